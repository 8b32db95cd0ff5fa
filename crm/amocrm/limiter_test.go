package amocrm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxInWindow is the most timestamps any window of length w holds.
func maxInWindow(ts []time.Time, w time.Duration) int {
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

func TestLimiterNeverExceedsTheRate(t *testing.T) {
	const rate, n = 20, 30
	var mu sync.Mutex
	var arrivals []time.Time
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ts.Close)
	c := newClient(t, ts.URL, func(o *Options) { o.RateLimit, o.Burst = rate, 1 })

	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			if i%2 == 0 {
				ctx = WithPriority(ctx, PriorityCall)
			}
			_, err := c.Users(ctx)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()

	require.Len(t, arrivals, n)
	span := arrivals[n-1].Sub(arrivals[0])
	assert.GreaterOrEqual(t, span, time.Duration(n-1)*time.Second/rate-20*time.Millisecond, "n requests need (n-1)/rate seconds")
	// A token bucket with burst 1 allows rate+1 in a second; one more for network jitter.
	assert.LessOrEqual(t, maxInWindow(arrivals, time.Second), rate+2)
	assert.LessOrEqual(t, maxInWindow(arrivals, 250*time.Millisecond), rate/4+2)
}

func TestCallPriorityGoesFirst(t *testing.T) {
	l := newLimiter(5, 1)
	waiting := make(chan Priority, 8)
	l.onWait = func(p Priority) { waiting <- p }
	ctx := context.Background()
	require.NoError(t, l.wait(ctx, PriorityBackground), "the first token is free")

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
		order = append(order, <-served)
	}
	assert.Equal(t, []Priority{PriorityCall, PriorityBackground, PriorityBackground, PriorityBackground}, order)
}

func TestLimiterFailsEarlyPastDeadline(t *testing.T) {
	l := newLimiter(1, 1)
	require.NoError(t, l.wait(context.Background(), PriorityCall))
	for _, p := range []Priority{PriorityCall, PriorityBackground} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		begin := time.Now()
		err := l.wait(ctx, p)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, p)
		assert.Less(t, time.Since(begin), 100*time.Millisecond, "no point waiting for a slot past the deadline")
	}
	// The cancelled call reservation gave its slot back: one second after the first token.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	assert.NoError(t, l.wait(ctx, PriorityCall))
}

func TestCallPathMarksPriority(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ts.Close)
	c := newClient(t, ts.URL, func(o *Options) { o.RateLimit, o.Burst = 4, 1 })
	seen := make(chan Priority, 4)
	c.limiter.onWait = func(p Priority) { seen <- p }
	ctx := context.Background()
	_, err := c.Users(ctx) // spends the burst, so the next request waits and reports its class
	require.NoError(t, err)
	_, err = c.CallPath().Users(ctx)
	require.NoError(t, err)
	assert.Equal(t, PriorityCall, next(t, seen))
	_, err = c.Users(ctx)
	require.NoError(t, err)
	assert.Equal(t, PriorityBackground, next(t, seen))
	assert.Equal(t, PriorityBackground, PriorityOf(ctx))
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
