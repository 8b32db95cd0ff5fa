package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/internal/httpapi"
)

// How often an instance with peers looks at Redis and, while it cannot reach it, at its
// peers; and how long each look may take. With HAProxy checking /healthz every 500 ms
// and two failures marking a server down, a cut-off instance leaves the pool within
// about 2 s of the cut.
const (
	clusterEvery       = 500 * time.Millisecond
	redisPingWait      = 300 * time.Millisecond
	clusterPeerTimeout = 700 * time.Millisecond
	// stepAsideAfter is how long Redis must have failed before an instance steps aside: a
	// Sentinel failover cuts every instance off for a second or two, and the one that
	// reconnects first must not make the others leave the pool meanwhile.
	stepAsideAfter = time.Second
	// peersCutOffFresh is how long a look that found every peer cut off from Redis too
	// stands: about two looks, each waiting for the slowest peer.
	peersCutOffFresh = 2 * (clusterEvery + clusterPeerTimeout)
)

// stepAside decides whether this instance should take calls, for /healthz: an instance
// cut off from Redis while a peer (cluster.peers) still reaches it steps aside, so that
// the load balancer sends calls to the peer, whose owner cache and event queue are
// current; an instance that is alone, or whose peers are cut off or dead too, keeps
// routing from amoCRM (routing never depends on Redis). A peer counts when its /healthz
// answers with its own redis check ok: that check pings Redis and asks nobody else, so
// two cut-off instances never wait on each other.
type stepAside struct {
	rdb   redis.UniversalClient
	peers []string
	http  *http.Client
	log   zerolog.Logger

	mu    sync.Mutex
	aside bool
	why   string
	// failingSince is when the pings started failing; zero while Redis answers.
	failingSince time.Time
	// allCutOffAt (unix ns) is the last look at which every peer said it is cut off too.
	allCutOffAt atomic.Int64
}

func newStepAside(rdb redis.UniversalClient, peers []string, log zerolog.Logger) *stepAside {
	return &stepAside{rdb: rdb, peers: peers, http: &http.Client{Timeout: clusterPeerTimeout},
		log: log.With().Str("component", "cluster").Logger(), why: "Redis connected"}
}

// run looks every clusterEvery until ctx ends.
func (s *stepAside) run(ctx context.Context) {
	t := time.NewTicker(clusterEvery)
	defer t.Stop()
	for {
		s.look(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// look decides once.
func (s *stepAside) look(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, redisPingWait)
	err := s.rdb.Ping(rctx).Err()
	cancel()
	if err == nil {
		s.failingSince = time.Time{}
		s.set(false, "Redis connected")
		return
	}
	if ctx.Err() != nil {
		return
	}
	if s.failingSince.IsZero() {
		s.failingSince = time.Now()
	}
	peer, allCutOff := s.survey(ctx)
	if allCutOff {
		s.allCutOffAt.Store(time.Now().UnixNano())
	}
	if time.Since(s.failingSince) < stepAsideAfter {
		return
	}
	if peer != "" {
		s.set(true, fmt.Sprintf("cut off from Redis (%v) while peer %s reaches it: stepping aside for it", err, peer))
		return
	}
	s.set(false, fmt.Sprintf("cut off from Redis (%v) and no peer reaches it: routing from amoCRM alone", err))
}

// survey asks every peer's /healthz at once: the first peer that answers taking calls with
// Redis connected ("" when none does; the others are not waited for then), and whether
// every peer answered that it is cut off from Redis too.
func (s *stepAside) survey(ctx context.Context) (withRedis string, allCutOff bool) {
	type answer struct {
		peer                        string
		answered, redis, takesCalls bool
	}
	answers := make(chan answer, len(s.peers))
	for _, p := range s.peers {
		go func() {
			a := answer{peer: p}
			a.answered, a.redis, a.takesCalls = s.peerState(ctx, p)
			answers <- a
		}()
	}
	allCutOff = true
	for range s.peers {
		a := <-answers
		if a.takesCalls {
			return a.peer, false // enough to step aside; a slow or dead peer is not waited for
		}
		allCutOff = allCutOff && a.answered && !a.redis
	}
	return "", allCutOff
}

// peerState asks one peer's /healthz whether it answers, whether it reaches Redis (its
// redis check, whatever the status: a peer with Redis but without Asterisk still spends
// through Redis), and whether it takes calls with Redis (200: a peer stepping aside itself
// takes no calls either).
func (s *stepAside) peerState(ctx context.Context, peer string) (answered, redis, takesCalls bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(peer, "/")+"/healthz", nil)
	if err != nil {
		return false, false, false
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return false, false, false
	}
	defer resp.Body.Close()
	var h struct {
		Checks map[string]struct {
			OK bool `json:"ok"`
		} `json:"checks"`
	}
	if json.NewDecoder(resp.Body).Decode(&h) != nil {
		return false, false, false
	}
	redisCheck, ok := h.Checks["redis"]
	if !ok {
		return false, false, false
	}
	return true, redisCheck.OK, redisCheck.OK && resp.StatusCode == http.StatusOK
}

// peersCutOff reports whether, at one of the last looks (peersCutOffFresh), every peer
// answered that it cannot reach Redis either: none of them spends the amoCRM budget
// through Redis, so this instance may keep spending its own share (amocrm.Options).
func (s *stepAside) peersCutOff() bool {
	at := s.allCutOffAt.Load()
	return at != 0 && time.Since(time.Unix(0, at)) < peersCutOffFresh
}

func (s *stepAside) set(aside bool, why string) {
	s.mu.Lock()
	was := s.aside
	s.aside, s.why = aside, why
	s.mu.Unlock()
	switch {
	case aside && !was:
		s.log.Warn().Msg(why)
	case !aside && was:
		s.log.Info().Str("state", why).Msg("taking calls again")
	}
}

// check is the required /healthz check "cluster": 503 while stepping aside.
func (s *stepAside) check() httpapi.Check {
	return httpapi.Check{Name: "cluster", Required: true, State: func(context.Context) (bool, string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return !s.aside, s.why
	}}
}
