package routing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/crm"
)

// cacheWait is how long a call waits on a shared cache (Redis) for one read or write. A
// healthy Redis answers in well under a millisecond; a cache slower than this is treated as
// down, because amoCRM answers a cold lookup in its own latency and the caller must not
// spend the lookup timeout on the cache first.
const cacheWait = 50 * time.Millisecond

// cacheRetry is how long calls skip a shared cache that failed or did not answer in
// cacheWait before one call tries it again: during an outage only that one call pays
// cacheWait, and the cache is used again within cacheRetry of coming back.
const cacheRetry = 2 * time.Second

// errUnreadable marks an entry the cache returned but that cannot be decoded: the cache
// itself answered, so it is not down (the lookup overwrites the entry).
var errUnreadable = errors.New("unreadable entry")

// errCacheSkipped is what a call gets from the guard while the cache is considered down.
var errCacheSkipped = errors.New("skipped: the owner cache is not answering")

// cacheGuard keeps a shared cache that stopped answering off the call path: each read or
// write waits at most wait, and after a failure every call skips the cache for retry.
type cacheGuard struct {
	cache OwnerCache
	wait  time.Duration
	retry time.Duration
	log   *zerolog.Logger

	mu        sync.Mutex
	downUntil time.Time // real time; zero while the cache answers
	downSince time.Time
}

func newCacheGuard(c OwnerCache, lookup time.Duration, log *zerolog.Logger) *cacheGuard {
	return &cacheGuard{cache: c, wait: min(cacheWait, lookup/4), retry: cacheRetry, log: log}
}

// skip says whether calls leave the cache alone now. Once the retry time has come, one
// caller is let through to try it and the others keep skipping until it reports.
func (g *cacheGuard) skip() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.downUntil.IsZero() {
		return false
	}
	now := time.Now()
	if now.Before(g.downUntil) {
		return true
	}
	g.downUntil = now.Add(g.wait) // this caller probes; others wait for its verdict
	return false
}

// report records how a read or write went.
func (g *cacheGuard) report(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		if !g.downUntil.IsZero() {
			g.log.Info().Dur("down_for", time.Since(g.downSince).Round(time.Millisecond)).Msg("owner cache answers again; calls use it")
		}
		g.downUntil, g.downSince = time.Time{}, time.Time{}
		return
	}
	now := time.Now()
	if g.downUntil.IsZero() {
		g.downSince = now
		g.log.Warn().Err(err).Dur("retry_in", g.retry).Msg("owner cache is not answering; calls ask the CRM without it until it is back")
	}
	g.downUntil = now.Add(g.retry)
}

// get reads the entry within wait; a cache that is down is not asked at all.
func (g *cacheGuard) get(ctx context.Context, phone crm.Phone) (Entry, bool, error) {
	if g.skip() {
		return Entry{}, false, errCacheSkipped
	}
	type got struct {
		e   Entry
		ok  bool
		err error
	}
	g2, err := guarded(ctx, g, func(ctx context.Context) got {
		e, ok, err := g.cache.Get(ctx, phone)
		return got{e, ok, err}
	}, func(v got) error { return v.err })
	if err != nil {
		return Entry{}, false, err
	}
	return g2.e, g2.ok, nil
}

// set stores the entry within wait; a cache that is down is not asked at all.
func (g *cacheGuard) set(ctx context.Context, e Entry, ttl time.Duration) error {
	if g.skip() {
		return errCacheSkipped
	}
	_, err := guarded(ctx, g, func(ctx context.Context) error { return g.cache.Set(ctx, e, ttl) }, func(err error) error { return err })
	return err
}

// guarded runs f under g's wait and reports the outcome to g. The caller's own deadline
// ending first is not the cache's fault and is not reported.
func guarded[T any](ctx context.Context, g *cacheGuard, f func(context.Context) T, errOf func(T) error) (T, error) {
	wctx, cancel := context.WithTimeout(ctx, g.wait)
	defer cancel()
	v, err := await(wctx, func() T { return f(wctx) })
	if err == nil {
		err = errOf(v)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return v, err
	case err != nil && wctx.Err() != nil:
		err = fmt.Errorf("owner cache: no answer within %s", g.wait)
	}
	if errors.Is(err, errUnreadable) {
		g.report(nil)
	} else {
		g.report(err)
	}
	return v, err
}
