package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/crmlink/crmlink/internal/queue"
)

const (
	defaultDeadLimit = 100
	maxDeadLimit     = 1000
)

// DeadEvents serves GET /v1/queue/dead?limit=N: the dead-letter list as a JSON array,
// oldest first, at most limit events (default 100, at most 1000).
func DeadEvents(q queue.Queue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := defaultDeadLimit
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > maxDeadLimit {
				WriteError(w, http.StatusBadRequest, "limit must be a number from 1 to 1000")
				return
			}
			limit = n
		}
		events, err := q.Dead(r.Context(), limit)
		if err != nil {
			WriteError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, events)
	})
}

// ReplayDead serves POST /v1/queue/dead/{id}/replay: the dead event goes back to the
// queue with its attempts reset. 404 when no dead event has that ID.
func ReplayDead(q queue.Queue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if id == "" {
			WriteError(w, http.StatusBadRequest, "mount this handler on POST /v1/queue/dead/{id}/replay")
			return
		}
		err := q.Replay(r.Context(), id)
		switch {
		case errors.Is(err, queue.ErrNotFound):
			WriteError(w, http.StatusNotFound, "no dead event with id "+strconv.Quote(id))
		case err != nil:
			WriteError(w, http.StatusServiceUnavailable, err.Error())
		default:
			WriteJSON(w, http.StatusOK, map[string]string{"replayed": id})
		}
	})
}

// ReplayAllDead serves POST /v1/queue/dead/replay: every dead event goes back to the
// queue with its attempts reset, e.g. after an outage that outlasted the retry horizon.
// It answers {"replayed": N}; on a store error 503 with the count replayed before it.
func ReplayAllDead(q queue.Queue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := queue.ReplayAll(r.Context(), q)
		if err != nil {
			WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error(), "replayed": n})
			return
		}
		WriteJSON(w, http.StatusOK, map[string]int{"replayed": n})
	})
}

// QueueStats serves GET /v1/queue/stats: the Stats counters as JSON.
func QueueStats(q queue.Queue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := q.Stats(r.Context())
		if err != nil {
			WriteError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, s)
	})
}
