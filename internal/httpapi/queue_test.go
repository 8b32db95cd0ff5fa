package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/queue"
	"github.com/crmlink/crmlink/internal/testrig"
)

func TestOperatorEndpoints(t *testing.T) {
	forEachQueue(t, func(t *testing.T, q queue.Queue) {
		mux := http.NewServeMux()
		mux.Handle("GET /v1/queue/dead", DeadEvents(q))
		mux.Handle("POST /v1/queue/dead/{id}/replay", ReplayDead(q))
		mux.Handle("GET /v1/queue/stats", QueueStats(q))
		do := func(method, path string) (int, string) {
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest(method, path, nil))
			return w.Code, w.Body.String()
		}

		code, body := do("GET", "/v1/queue/dead")
		assert.Equal(t, http.StatusOK, code)
		assert.JSONEq(t, `[]`, body, "an empty list, not null")

		var fail atomic.Bool
		fail.Store(true)
		deliver(t, q, func(queue.Event) error {
			if fail.Load() {
				return events.Permanent(errors.New("lead 7 was deleted"))
			}
			return nil
		})
		require.NoError(t, q.Publish(context.Background(), queue.Event{ID: "1700000000.42", Kind: "call_outcome", Payload: []byte(`{"phone":"+79990001122"}`)}))
		waitStats(t, q, "dead", func(s queue.Stats) bool { return s.Dead == 1 && s.InFlight == 0 })

		code, body = do("GET", "/v1/queue/dead?limit=10")
		require.Equal(t, http.StatusOK, code)
		var dead []map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &dead))
		require.Len(t, dead, 1)
		assert.Equal(t, "1700000000.42", dead[0]["id"])
		assert.Equal(t, "call_outcome", dead[0]["kind"])
		assert.EqualValues(t, 1, dead[0]["attempts"])
		assert.Equal(t, "permanent: lead 7 was deleted", dead[0]["last_error"])
		assert.Equal(t, map[string]any{"phone": "+79990001122"}, dead[0]["payload"])

		code, body = do("GET", "/v1/queue/dead?limit=0")
		assert.Equal(t, http.StatusBadRequest, code)
		assert.JSONEq(t, `{"error":"limit must be a number from 1 to 1000"}`, body)

		code, body = do("POST", "/v1/queue/dead/nope/replay")
		assert.Equal(t, http.StatusNotFound, code)
		assert.JSONEq(t, `{"error":"no dead event with id \"nope\""}`, body)

		fail.Store(false)
		code, body = do("POST", "/v1/queue/dead/1700000000.42/replay")
		assert.Equal(t, http.StatusOK, code)
		assert.JSONEq(t, `{"replayed":"1700000000.42"}`, body)
		waitStats(t, q, "replayed", settledAll(1))

		code, body = do("GET", "/v1/queue/stats")
		assert.Equal(t, http.StatusOK, code)
		assert.JSONEq(t, `{"pending":0,"retrying":0,"in_flight":0,"dead":0,"processed":1,"failures":1}`, body)
	})
}

// After an outage longer than the retry horizon the admin replays the whole list at once.
func TestReplayAllEndpoint(t *testing.T) {
	forEachQueue(t, func(t *testing.T, q queue.Queue) {
		mux := http.NewServeMux()
		mux.Handle("POST /v1/queue/dead/replay", ReplayAllDead(q))
		mux.Handle("POST /v1/queue/dead/{id}/replay", ReplayDead(q))
		replayAll := func() (int, string) {
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest("POST", "/v1/queue/dead/replay", nil))
			return w.Code, w.Body.String()
		}

		code, body := replayAll()
		assert.Equal(t, http.StatusOK, code)
		assert.JSONEq(t, `{"replayed":0}`, body, "an empty list replays nothing")

		var down atomic.Bool
		down.Store(true)
		calls := deliver(t, q, func(queue.Event) error {
			if down.Load() {
				return events.Permanent(errors.New("amoCRM answered 401: the token expired"))
			}
			return nil
		})
		var ids []string
		for i := range 5 {
			ids = append(ids, fmt.Sprintf("call-%03d", i))
			require.NoError(t, q.Publish(context.Background(), queue.Event{ID: ids[i], Kind: "call_outcome", Payload: []byte(`{}`)}))
		}
		waitStats(t, q, "all dead", func(s queue.Stats) bool { return s.Dead == 5 && s.InFlight == 0 && s.Pending == 0 })

		down.Store(false)
		code, body = replayAll()
		assert.Equal(t, http.StatusOK, code)
		assert.JSONEq(t, `{"replayed":5}`, body)
		waitStats(t, q, "all delivered", settledAll(5))
		dead, err := q.Dead(context.Background(), 0)
		require.NoError(t, err)
		assert.Empty(t, dead)
		for _, id := range ids {
			got := calls(id)
			require.Len(t, got, 2, "event %s: the dead attempt and the replay", id)
			assert.Equal(t, 1, got[1].Attempts, "attempts reset")
		}
	})
}

// forEachQueue runs the operator endpoints against both stores the server may run on: the
// on-disk log and Redis Streams (a stream of the test's own in the rig's Redis).
func forEachQueue(t *testing.T, f func(t *testing.T, q queue.Queue)) {
	o := queue.Options{Concurrency: 4, BackoffBase: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond,
		HandlerTimeout: 10 * time.Second, ShutdownGrace: 2 * time.Second, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
	t.Run("disk", func(t *testing.T) {
		q, err := queue.NewDisk(t.TempDir(), queue.DiskOptions{Options: o})
		require.NoError(t, err)
		t.Cleanup(func() { _ = q.Close() })
		f(t, q)
	})
	t.Run("redis", func(t *testing.T) {
		q, err := queue.NewRedis(testrig.Redis(t), queue.RedisOptions{Options: o, Stream: "crmlink:test:httpapi:" + t.Name(), ClaimMinIdle: 200 * time.Millisecond})
		require.NoError(t, err)
		t.Cleanup(func() { _ = q.Close() })
		f(t, q)
	})
}

// deliver runs q with handle until the test ends and returns what each event ID was
// delivered as, in order.
func deliver(t *testing.T, q queue.Queue, handle func(queue.Event) error) (calls func(id string) []queue.Event) {
	var mu sync.Mutex
	seen := map[string][]queue.Event{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- q.Run(ctx, func(_ context.Context, e queue.Event) error {
			mu.Lock()
			seen[e.ID] = append(seen[e.ID], e)
			mu.Unlock()
			return handle(e)
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return func(id string) []queue.Event {
		mu.Lock()
		defer mu.Unlock()
		return append([]queue.Event(nil), seen[id]...)
	}
}

func waitStats(t *testing.T, q queue.Queue, what string, cond func(queue.Stats) bool) {
	t.Helper()
	testrig.WaitFor(t, 15*time.Second, what, func() bool {
		s, err := q.Stats(context.Background())
		return err == nil && cond(s)
	})
}

func settledAll(n int64) func(queue.Stats) bool {
	return func(s queue.Stats) bool {
		return s.Processed == n && s.Pending == 0 && s.InFlight == 0 && s.Retrying == 0
	}
}
