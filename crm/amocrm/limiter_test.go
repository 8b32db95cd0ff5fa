package amocrm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxInWindow is the most timestamps any half-open window [t, t+w) holds, the way the
// sandbox and amoCRM count a second.
func maxInWindow(ts []time.Time, w time.Duration) int {
	ts = slices.SortedFunc(slices.Values(ts), time.Time.Compare)
	best := 0
	for i := range ts {
		n := 0
		for j := i; j < len(ts) && ts[j].Sub(ts[i]) < w; j++ {
			n++
		}
		best = max(best, n)
	}
	return best
}

func TestRateWindow(t *testing.T) {
	cases := []struct {
		rate   float64
		n      int
		window time.Duration
	}{
		{7, 7, 1050 * time.Millisecond},
		{7.9, 7, 1050 * time.Millisecond},
		{2.5, 2, 1050 * time.Millisecond},
		{1, 1, 1050 * time.Millisecond},
		{0.5, 1, 2050 * time.Millisecond},
		{0.25, 1, 4050 * time.Millisecond},
	}
	for _, c := range cases {
		n, window := rateWindow(c.rate, DefaultRateMargin)
		assert.Equal(t, c.n, n, "rate %g", c.rate)
		assert.Equal(t, c.window, window, "rate %g", c.rate)
	}
}

func TestLimiterIdleServesNAtOnce(t *testing.T) {
	for _, p := range []Priority{PriorityCall, PriorityBackground} {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			n, window := rateWindow(DefaultRateLimit, DefaultRateMargin)
			l := newLimiter(n, window)
			waited := 0
			l.onWait = func(Priority) { waited++ }
			ctx := WithPriority(context.Background(), p)

			begin := time.Now()
			for range n {
				require.NoError(t, l.wait(ctx, p))
			}
			assert.Less(t, time.Since(begin), 5*time.Millisecond, "an idle account serves %d requests back to back", n)
			assert.Zero(t, waited)

			require.NoError(t, l.wait(ctx, p))
			took := time.Since(begin)
			assert.Equal(t, 1, waited)
			assert.GreaterOrEqual(t, took, window, "request %d waits for the first to leave the window", n+1)
			assert.Less(t, took, window+100*time.Millisecond)
		})
	}
}

// arrivals is an httptest server that records when each request arrived.
func arrivals(t *testing.T) (*httptest.Server, func() []time.Time) {
	var mu sync.Mutex
	var at []time.Time
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ts.Close)
	return ts, func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(at)
	}
}

func TestLimiterKeepsEveryServerSecondWithinTheRate(t *testing.T) {
	t.Parallel() // seconds of real time; nothing shared with other tests
	const rate = DefaultRateLimit
	ts, got := arrivals(t)
	c := newClient(t, ts.URL, func(o *Options) { o.RateLimit = rate })
	_, window := rateWindow(rate, DefaultRateMargin)

	var wg sync.WaitGroup
	for i := range 3 * rate {
		wg.Go(func() {
			ctx := context.Background()
			if i%2 == 0 {
				ctx = WithPriority(ctx, PriorityCall)
			}
			_, err := c.Users(ctx)
			assert.NoError(t, err)
		})
	}
	wg.Wait()

	at := got()
	require.Len(t, at, 3*rate)
	slices.SortFunc(at, time.Time.Compare)
	assert.LessOrEqual(t, maxInWindow(at, time.Second), rate, "no second at the server holds more than the rate")
	assert.Less(t, at[rate-1].Sub(at[0]), 100*time.Millisecond, "the first %d go at once", rate)
	assert.GreaterOrEqual(t, at[3*rate-1].Sub(at[0]), 2*window-10*time.Millisecond, "%d requests need three windows", 3*rate)
}

func TestLimiterKeepsTheSandboxFromRefusing(t *testing.T) {
	t.Parallel()
	// The sandbox counts 7 per sliding second as amoCRM does and answers 429 beyond.
	const rate = DefaultRateLimit
	sb, url := startSandbox(t, sandboxRate(rate))
	c := newClient(t, url, func(o *Options) { o.RateLimit, o.MaxRetries = rate, 1 })
	var wg sync.WaitGroup
	for range 3 * rate {
		wg.Go(func() {
			_, err := c.CallPath().Company(context.Background(), 3001)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, 3*rate, sb.Requests("GET /api/v4/companies/3001"), "not one request was refused and retried")
}

func TestCallPriorityGoesFirst(t *testing.T) {
	l := newLimiter(1, 100*time.Millisecond)
	waiting := make(chan Priority, 8)
	l.onWait = func(p Priority) { waiting <- p }
	ctx := context.Background()
	require.NoError(t, l.wait(ctx, PriorityBackground), "the first slot is free")

	served := make(chan Priority, 8)
	acquire := func(p Priority) {
		go func() {
			assert.NoError(t, l.wait(ctx, p))
			served <- p
		}()
		assert.Equal(t, p, <-waiting)
	}
	// Three background requests queue first, then a call arrives.
	for range 3 {
		acquire(PriorityBackground)
	}
	acquire(PriorityCall)

	var order []Priority
	for range 4 {
		order = append(order, next(t, served))
	}
	assert.Equal(t, []Priority{PriorityCall, PriorityBackground, PriorityBackground, PriorityBackground}, order)
}

func TestLimiterFailsEarlyPastDeadline(t *testing.T) {
	const window = time.Second
	l := newLimiter(1, window)
	begin := time.Now()
	require.NoError(t, l.wait(context.Background(), PriorityCall))
	for _, p := range []Priority{PriorityCall, PriorityBackground} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		start := time.Now()
		err := l.wait(ctx, p)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, p)
		assert.ErrorContains(t, err, "past the deadline")
		assert.Less(t, time.Since(start), 100*time.Millisecond, "no point waiting for a slot past the deadline")
	}
	// Failing early reserved nothing: the next slot is still one window after the first.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	require.NoError(t, l.wait(ctx, PriorityCall))
	assert.Less(t, time.Since(begin), window+100*time.Millisecond)
}

func TestLimiterCancelledCallFreesItsSlot(t *testing.T) {
	const window = 300 * time.Millisecond
	for _, p := range []Priority{PriorityCall, PriorityBackground} {
		t.Run("then "+p.String(), func(t *testing.T) {
			t.Parallel()
			l := newLimiter(1, window)
			waiting := make(chan Priority, 1)
			l.onWait = func(p Priority) { waiting <- p }
			begin := time.Now()
			require.NoError(t, l.wait(context.Background(), PriorityCall))

			// A call reserves the slot one window ahead, then its caller hangs up.
			ctx, cancel := context.WithCancel(context.Background())
			gone := make(chan error, 1)
			go func() { gone <- l.wait(ctx, PriorityCall) }()
			require.Equal(t, PriorityCall, next(t, waiting))
			cancel()
			require.ErrorIs(t, next(t, gone), context.Canceled)

			l.onWait = nil
			require.NoError(t, l.wait(context.Background(), p))
			took := time.Since(begin)
			assert.GreaterOrEqual(t, took, window)
			assert.Less(t, took, window+window/2, "the freed slot is taken, not the one after it")
		})
	}
}

func TestCallPathMarksPriority(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ts.Close)
	c := newClient(t, ts.URL, nil)
	c.limiter = newLimiter(1, 50*time.Millisecond)
	seen := make(chan Priority, 4)
	c.limiter.onWait = func(p Priority) { seen <- p }
	ctx := context.Background()
	_, err := c.Users(ctx) // spends the window, so the next request waits and reports its class
	require.NoError(t, err)
	_, err = c.CallPath().Users(ctx)
	require.NoError(t, err)
	assert.Equal(t, PriorityCall, next(t, seen))
	_, err = c.Users(ctx)
	require.NoError(t, err)
	assert.Equal(t, PriorityBackground, next(t, seen))
	assert.Equal(t, PriorityBackground, PriorityOf(ctx))
	call, background := c.Requests()
	assert.Equal(t, [2]int64{1, 2}, [2]int64{call, background}, "the live page's usage counts each request in its class")
}

func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("nothing arrived")
		panic("unreachable")
	}
}

func TestCallReserveKeepsSlotsFreeForCalls(t *testing.T) {
	n, window := rateWindow(DefaultRateLimit, DefaultRateMargin)
	l := newLimiter(n, window).reserveForCalls(2)
	waited := map[Priority]int{}
	var mu sync.Mutex
	l.onWait = func(p Priority) { mu.Lock(); waited[p]++; mu.Unlock() }
	ctx := context.Background()

	for range n - 2 {
		require.NoError(t, l.wait(ctx, PriorityBackground))
	}
	// The window has room for two more, but they are the calls': background waits.
	bg := make(chan time.Time, 1)
	go func() {
		assert.NoError(t, l.wait(ctx, PriorityBackground))
		bg <- time.Now()
	}()
	begin := time.Now()
	for range 2 {
		require.NoError(t, l.wait(ctx, PriorityCall))
	}
	assert.Less(t, time.Since(begin), 5*time.Millisecond, "a call finds the reserved slots free while background work is busy")
	mu.Lock()
	assert.Zero(t, waited[PriorityCall])
	mu.Unlock()
	got := next(t, bg)
	assert.GreaterOrEqual(t, got.Sub(begin), window-10*time.Millisecond, "background work waits for the window rather than take a reserved slot")

	assert.Equal(t, n-1, newLimiter(n, window).reserveForCalls(100).reserve, "background work keeps one slot")
	assert.Zero(t, newLimiter(n, window).reserveForCalls(-3).reserve)
}
