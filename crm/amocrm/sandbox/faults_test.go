package sandbox

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFailNext(t *testing.T) {
	sb, ts := start(t)
	sb.FailNext(2, http.StatusBadGateway)
	assert.Equal(t, http.StatusBadGateway, get(t, ts, "/api/v4/users").status)
	assert.Equal(t, http.StatusBadGateway, get(t, ts, "/api/v4/contacts/2001").status)
	assert.Equal(t, http.StatusOK, get(t, ts, "/api/v4/users").status)
	assert.Equal(t, 3, sb.Requests("/api/v4/users")+sb.Requests("GET /api/v4/contacts/2001"))
}

func TestLatency(t *testing.T) {
	sb, ts := start(t)
	sb.SetLatency(60 * time.Millisecond)
	begin := time.Now()
	assert.Equal(t, http.StatusOK, get(t, ts, "/api/v4/users").status)
	assert.GreaterOrEqual(t, time.Since(begin), 60*time.Millisecond)
	sb.SetLatency(0)
	begin = time.Now()
	get(t, ts, "/api/v4/users")
	assert.Less(t, time.Since(begin), 60*time.Millisecond)
}

func TestHangUntilClientGivesUp(t *testing.T) {
	sb, ts := start(t)
	sb.Hang(1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/api/v4/users", nil)
	require.NoError(t, err)
	begin := time.Now()
	_, err = http.DefaultClient.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(begin), 2*time.Second)
	assert.Equal(t, http.StatusOK, get(t, ts, "/api/v4/users").status, "only the next request hangs")
}

func TestHangAllReleasedByClose(t *testing.T) {
	sb, ts := start(t)
	hung := make(chan struct{}, 3)
	sb.onHang = func() { hung <- struct{}{} }
	sb.HangAll(true)
	var wg sync.WaitGroup
	statuses := make([]int, 3)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = get(t, ts, "/api/v4/users").status
		}()
	}
	for range statuses {
		<-hung
	}
	sb.Close()
	wg.Wait()
	assert.Equal(t, []int{503, 503, 503}, statuses)
}

func TestRateWindow(t *testing.T) {
	sb, ts := start(t, WithRateLimit(3))
	clock := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	sb.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }

	statuses := func(n int) []int {
		var out []int
		for range n {
			out = append(out, get(t, ts, "/api/v4/users").status)
		}
		return out
	}
	assert.Equal(t, []int{200, 200, 200, 429}, statuses(4))
	advance(999 * time.Millisecond)
	assert.Equal(t, []int{429}, statuses(1), "the window slides, it does not reset")
	advance(time.Millisecond)
	assert.Equal(t, []int{200, 200, 200, 429}, statuses(4))
	a := get(t, ts, "/api/v4/users")
	assert.Equal(t, "application/problem+json", a.ctype)
	sb.SetRateLimit(-1)
	assert.Equal(t, []int{200, 200, 200, 200, 200}, statuses(5))
}

func TestConcurrentRequests(t *testing.T) {
	sb, ts := start(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				assert.Equal(t, http.StatusOK, get(t, ts, "/api/v4/contacts?query=495").status)
			} else {
				_, err := sb.SetResponsible(context.Background(), ResponsibleUpdate{Entity: "lead", ID: 4002, ResponsibleUserID: int64(1001 + i%3)})
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 10, sb.Requests("GET /api/v4/contacts"))
}
