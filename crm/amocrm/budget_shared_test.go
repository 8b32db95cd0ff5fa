package amocrm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
)

// Three crmlink instances (three Clients, each with its own limiter) share one account: with
// the budget in Redis, amoCRM never sees more than 7 requests in a second from all of them
// together, and none is refused; call-path lookups and background writes mixed.
func TestSharedBudgetKeepsAllInstancesWithinTheAccountRate(t *testing.T) {
	const rate, instances, each = DefaultRateLimit, 3, 7
	rdb := testrig.Redis(t)
	var mu sync.Mutex
	var at []time.Time
	sb, url := startSandbox(t, sandboxRate(rate))
	target, err := neturl.Parse(url)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(spy.Close)

	var wg sync.WaitGroup
	begin := time.Now()
	for range instances {
		c := newClient(t, spy.URL, func(o *Options) { o.RateLimit, o.MaxRetries, o.SharedBudget, o.Instances = rate, 1, rdb, instances })
		for i := range each {
			wg.Go(func() {
				ctx := context.Background()
				if i%2 == 0 {
					ctx = WithPriority(ctx, PriorityCall)
				}
				_, err := c.CallPath().Company(ctx, 3001)
				assert.NoError(t, err)
			})
		}
	}
	wg.Wait()
	took := time.Since(begin)

	assert.Zero(t, sb.RateLimited(), "amoCRM answered 429: the instances together went past %d requests in a second", rate)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, at, instances*each)
	assert.LessOrEqual(t, maxInWindow(at, time.Second), rate, "no second at the server holds more than the rate")
	_, window := rateWindow(rate, DefaultRateMargin)
	assert.GreaterOrEqual(t, took, 2*window-20*time.Millisecond, "%d requests need three windows", instances*each)
}

// A call-path lookup on one instance goes ahead of background work another instance is
// waiting with: the shared budget keeps the priorities across instances.
func TestSharedBudgetServesCallsOfAnotherInstanceFirst(t *testing.T) {
	rdb := testrig.Redis(t)
	const window = 200 * time.Millisecond
	a := newBudget(t, rdb, 1, newLimiter(1, window))
	b := newBudget(t, rdb, 1, newLimiter(1, window))
	ctx := context.Background()
	require.NoError(t, a.wait(ctx, PriorityBackground), "the first slot is free")

	served := make(chan Priority, 4)
	waiting := make(chan Priority, 4)
	a.local.onWait = func(p Priority) { waiting <- p }
	b.local.onWait = func(p Priority) { waiting <- p }
	go func() { assert.NoError(t, a.wait(ctx, PriorityBackground)); served <- PriorityBackground }()
	require.Equal(t, PriorityBackground, next(t, waiting))
	go func() { assert.NoError(t, b.wait(ctx, PriorityCall)); served <- PriorityCall }()
	require.Equal(t, PriorityCall, next(t, waiting))
	assert.Equal(t, []Priority{PriorityCall, PriorityBackground}, []Priority{next(t, served), next(t, served)})
}

// A call that cannot get a slot before its deadline learns it at once, and reserves nothing.
func TestSharedBudgetFailsEarlyPastDeadline(t *testing.T) {
	rdb := testrig.Redis(t)
	s := newBudget(t, rdb, 1, newLimiter(1, time.Second))
	require.NoError(t, s.wait(context.Background(), PriorityCall))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.wait(ctx, PriorityCall)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 100*time.Millisecond)
	n, err := rdb.ZCard(context.Background(), DefaultSharedBudgetKey).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the refused call reserved no slot")
}

// Routing never depends on Redis: with the shared budget's Redis gone, requests are served
// at once by the instance's own limiter (within the same 7 a second), without waiting for
// Redis on each one.
func TestSharedBudgetFallsBackToTheLocalLimiterWithoutRedis(t *testing.T) {
	ts, got := arrivals(t)
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	c := newClient(t, ts.URL, func(o *Options) { o.RateLimit, o.SharedBudget = DefaultRateLimit, dead })
	begin := time.Now()
	for i := range 2 * DefaultRateLimit {
		_, err := c.CallPath().Users(context.Background())
		require.NoError(t, err, "request %d", i)
	}
	at := got()
	require.Len(t, at, 2*DefaultRateLimit)
	assert.LessOrEqual(t, maxInWindow(at, time.Second), DefaultRateLimit, "the local limiter still keeps the rate")
	_, window := rateWindow(DefaultRateLimit, DefaultRateMargin)
	assert.Less(t, time.Since(begin), window+sharedBudgetTimeout+200*time.Millisecond, "one failed look at Redis, not one per request")
}

// Two instances cut off from Redis together (a Redis that refuses connections: nothing can
// have reached it, so each spends its share at once) spend half the budget each, so the
// account still sees at most 7 requests in a second.
func TestSharedBudgetSplitsTheBudgetWhileRedisIsGone(t *testing.T) {
	ts, got := arrivals(t)
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	var wg sync.WaitGroup
	for range 2 {
		c := newClient(t, ts.URL, func(o *Options) { o.RateLimit, o.SharedBudget, o.Instances = DefaultRateLimit, dead, 2 })
		for range 9 {
			wg.Go(func() {
				_, err := c.Users(context.Background())
				assert.NoError(t, err)
			})
		}
	}
	wg.Wait()
	at := got()
	require.Len(t, at, 18)
	assert.LessOrEqual(t, maxInWindow(at, time.Second), 6, "3 a second each")

}

// newBudget is a shared budget on rdb for instances instances, stopped with the test.
func newBudget(t *testing.T, rdb redis.UniversalClient, instances int, local *limiter) *sharedBudget {
	t.Helper()
	s := newSharedBudget(rdb, "", instances, nil, local, zerolog.Nop())
	t.Cleanup(s.close)
	return s
}
