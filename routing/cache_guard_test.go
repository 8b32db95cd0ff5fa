package routing

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
)

// hangingCache is a shared cache whose link can go dead: while hung, reads and writes
// never return (not even at their context's deadline) until the test ends, like a Redis
// behind a blackholed port with a client that ignores deadlines.
type hangingCache struct {
	OwnerCache
	hung    atomic.Bool
	release chan struct{}
	asked   atomic.Int64
}

func (c *hangingCache) Get(ctx context.Context, p crm.Phone) (Entry, bool, error) {
	c.asked.Add(1)
	if c.hung.Load() {
		<-c.release
	}
	return c.OwnerCache.Get(ctx, p)
}

func (c *hangingCache) Set(ctx context.Context, e Entry, ttl time.Duration) error {
	c.asked.Add(1)
	if c.hung.Load() {
		<-c.release
	}
	return c.OwnerCache.Set(ctx, e, ttl)
}

func TestDecideSkipsACacheThatDoesNotAnswer(t *testing.T) {
	clock := newClock()
	cache := &hangingCache{OwnerCache: NewMemoryCache(0, clock.Now), release: make(chan struct{})}
	t.Cleanup(func() { close(cache.release) })
	dir := basicWorld().directory()
	r := newTestRouter(t, dir, clock, func(o *Options) { o.Cache = cache })
	r.guard.retry = 100 * time.Millisecond
	ctx := t.Context()

	d := r.Decide(ctx, call())
	require.Equal(t, SourceCRM, d.Source)
	require.Equal(t, SourceCache, r.Decide(ctx, call()).Source, "the cache answers while it is up")

	cache.hung.Store(true)
	d = r.Decide(ctx, call())
	assert.Equal(t, Routed, d.Result, "steps: %+v", d.Steps)
	assert.Equal(t, SourceCRM, d.Source, "the CRM answers while the cache hangs")
	assert.Less(t, d.Latency, cacheWait+60*time.Millisecond, "waited for the cache no longer than cacheWait, not the lookup timeout (%s)", r.lookup)

	asked := cache.asked.Load()
	d = r.Decide(ctx, call())
	assert.Equal(t, Routed, d.Result, "steps: %+v", d.Steps)
	assert.Equal(t, SourceCRM, d.Source)
	assert.Less(t, d.Latency, 10*time.Millisecond, "the next call does not wait on the dead cache at all")
	assert.Equal(t, asked, cache.asked.Load(), "a cache known to be down is not asked")

	cache.hung.Store(false)
	back := time.Now()
	require.Eventually(t, func() bool { return r.Decide(ctx, call()).Source == SourceCache }, 2*time.Second, 10*time.Millisecond,
		"the cache is used again once it answers")
	assert.Less(t, time.Since(back), r.guard.retry+cacheWait+50*time.Millisecond, "tried again after the retry time")
}
