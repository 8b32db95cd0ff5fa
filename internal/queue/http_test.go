package queue

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/events"
)

func TestOperatorEndpoints(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		q := open(t, fastOptions(t))
		mux := http.NewServeMux()
		mux.Handle("GET /v1/queue/dead", DeadHandler(q))
		mux.Handle("POST /v1/queue/dead/{id}/replay", ReplayHandler(q))
		mux.Handle("GET /v1/queue/stats", StatsHandler(q))
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
		rec := newRecorder(func(context.Context, Event) error {
			if fail.Load() {
				return events.Permanent(errors.New("lead 7 was deleted"))
			}
			return nil
		})
		startRun(t, q, rec.handle)
		require.NoError(t, q.Publish(context.Background(), event("1700000000.42", map[string]string{"phone": "+79990001122"})))
		waitStats(t, q, "dead", func(s Stats) bool { return s.Dead == 1 && s.InFlight == 0 })

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
	forEachStore(t, func(t *testing.T, open opener) {
		q := open(t, fastOptions(t))
		mux := http.NewServeMux()
		mux.Handle("POST /v1/queue/dead/replay", ReplayAllHandler(q))
		mux.Handle("POST /v1/queue/dead/{id}/replay", ReplayHandler(q))
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
		rec := newRecorder(func(context.Context, Event) error {
			if down.Load() {
				return events.Permanent(errors.New("amoCRM answered 401: the token expired"))
			}
			return nil
		})
		startRun(t, q, rec.handle)
		ids := publishN(t, q, 5, "call")
		waitStats(t, q, "all dead", func(s Stats) bool { return s.Dead == 5 && s.InFlight == 0 && s.Pending == 0 })

		down.Store(false)
		code, body = replayAll()
		assert.Equal(t, http.StatusOK, code)
		assert.JSONEq(t, `{"replayed":5}`, body)
		waitStats(t, q, "all delivered", settledAll(5))
		assert.Empty(t, deadList(t, q))
		for _, id := range ids {
			calls := rec.callsOf(id)
			require.Len(t, calls, 2, "event %s: the dead attempt and the replay", id)
			assert.Equal(t, 1, calls[1].Attempts, "attempts reset")
		}
	})
}
