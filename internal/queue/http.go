package queue

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

const (
	defaultDeadLimit = 100
	maxDeadLimit     = 1000
)

// DeadHandler serves GET /v1/queue/dead?limit=N: the dead-letter list as a JSON array,
// oldest first, at most limit events (default 100, at most 1000).
func DeadHandler(q Queue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := defaultDeadLimit
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > maxDeadLimit {
				writeError(w, http.StatusBadRequest, "limit must be a number from 1 to 1000")
				return
			}
			limit = n
		}
		events, err := q.Dead(r.Context(), limit)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, events)
	})
}

// ReplayHandler serves POST /v1/queue/dead/{id}/replay: the dead event goes back to the
// queue with its attempts reset. 404 when no dead event has that ID.
func ReplayHandler(q Queue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if id == "" {
			writeError(w, http.StatusBadRequest, "mount this handler on POST /v1/queue/dead/{id}/replay")
			return
		}
		err := q.Replay(r.Context(), id)
		switch {
		case errors.Is(err, ErrNotFound):
			writeError(w, http.StatusNotFound, "no dead event with id "+strconv.Quote(id))
		case err != nil:
			writeError(w, http.StatusServiceUnavailable, err.Error())
		default:
			writeJSON(w, http.StatusOK, map[string]string{"replayed": id})
		}
	})
}

// ReplayAllHandler serves POST /v1/queue/dead/replay: every dead event goes back to the
// queue with its attempts reset, e.g. after an outage that outlasted the retry horizon.
// It answers {"replayed": N}; on a store error 503 with the count replayed before it.
func ReplayAllHandler(q Queue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := ReplayAll(r.Context(), q)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error(), "replayed": n})
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"replayed": n})
	})
}

// StatsHandler serves GET /v1/queue/stats: the Stats counters as JSON.
func StatsHandler(q Queue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := q.Stats(r.Context())
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, s)
	})
}

// writeJSON and writeError match internal/httpapi's responses ({"error": msg}); the
// package does not import httpapi so that httpapi may mount these handlers.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
