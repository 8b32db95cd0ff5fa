package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
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
	if time.Since(s.failingSince) < stepAsideAfter {
		return
	}
	if peer := s.peerWithRedis(ctx); peer != "" {
		s.set(true, fmt.Sprintf("cut off from Redis (%v) while peer %s reaches it: stepping aside for it", err, peer))
		return
	}
	s.set(false, fmt.Sprintf("cut off from Redis (%v) and no peer reaches it: routing from amoCRM alone", err))
}

// peerWithRedis is the first peer that answers with Redis connected, "" when none does.
func (s *stepAside) peerWithRedis(ctx context.Context) string {
	found := make(chan string, len(s.peers))
	var wg sync.WaitGroup
	for _, p := range s.peers {
		wg.Go(func() {
			if s.peerHasRedis(ctx, p) {
				found <- p
			}
		})
	}
	go func() { wg.Wait(); close(found) }()
	return <-found
}

func (s *stepAside) peerHasRedis(ctx context.Context, peer string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(peer, "/")+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var h struct {
		Checks map[string]struct {
			OK bool `json:"ok"`
		} `json:"checks"`
	}
	if json.NewDecoder(resp.Body).Decode(&h) != nil {
		return false
	}
	// A peer that is stepping aside itself (503) takes no calls either.
	return resp.StatusCode == http.StatusOK && h.Checks["redis"].OK
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
