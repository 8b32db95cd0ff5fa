package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxControlBody bounds a control request; seeds are the largest.
const maxControlBody = 16 << 20

// serveControl is the test-only JSON API under /_sandbox/; it needs no token and is not
// counted or rate limited.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + r.URL.Path
	h, ok := map[string]func(http.ResponseWriter, *http.Request) error{
		"POST /_sandbox/latency":       s.ctlLatency,
		"POST /_sandbox/fail":          s.ctlFail,
		"POST /_sandbox/hang":          s.ctlHang,
		"POST /_sandbox/responsible":   s.ctlResponsible,
		"POST /_sandbox/webhook":       s.ctlWebhook,
		"POST /_sandbox/rate-limit":    s.ctlRateLimit,
		"POST /_sandbox/expire-tokens": s.ctlExpireTokens,
		"GET /_sandbox/requests":       func(w http.ResponseWriter, _ *http.Request) error { return reply(w, s.RequestCounts()) },
		"GET /_sandbox/rate-limited": func(w http.ResponseWriter, _ *http.Request) error {
			return reply(w, map[string]int{"rate_limited": s.RateLimited()})
		},
		"POST /_sandbox/reset-counters": func(w http.ResponseWriter, _ *http.Request) error { s.ResetCounters(); return replyOK(w) },
		"GET /_sandbox/created":         func(w http.ResponseWriter, _ *http.Request) error { return reply(w, s.Created()) },
		"GET /_sandbox/call-events":     func(w http.ResponseWriter, _ *http.Request) error { return reply(w, s.CallEvents()) },
		"POST /_sandbox/seed":           s.ctlSeed,
		"GET /_sandbox/state":           func(w http.ResponseWriter, _ *http.Request) error { return reply(w, s.State()) },
	}[route]
	if !ok {
		h, ok = s.controlWithID(r)
	}
	if !ok {
		writeProblem(w, http.StatusNotFound, "no control endpoint "+route)
		return
	}
	if err := h(w, r); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrNotFound) {
			status = http.StatusNotFound
		}
		writeProblem(w, status, err.Error())
	}
}

// controlWithID routes the control endpoints whose path names an entity:
// POST /_sandbox/unsorted/{uid}/accept|decline and POST /_sandbox/tasks/{id}/complete.
func (s *Server) controlWithID(r *http.Request) (func(http.ResponseWriter, *http.Request) error, bool) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/_sandbox/"), "/")
	if r.Method != http.MethodPost || len(parts) != 3 || parts[1] == "" {
		return nil, false
	}
	switch {
	case parts[0] == "unsorted" && (parts[2] == "accept" || parts[2] == "decline"):
		uid, accept := parts[1], parts[2] == "accept"
		return func(w http.ResponseWriter, r *http.Request) error { return s.ctlDecide(w, r, uid, accept) }, true
	case parts[0] == "tasks" && parts[2] == "complete":
		id, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil {
			return nil, false
		}
		return func(w http.ResponseWriter, r *http.Request) error { return s.ctlCompleteTask(w, r, id) }, true
	}
	return nil, false
}

func (s *Server) ctlDecide(w http.ResponseWriter, r *http.Request, uid string, accept bool) error {
	var req struct {
		UserID   int64 `json:"user_id"`
		StatusID int64 `json:"status_id"`
	}
	if err := decodeOptional(r, &req); err != nil {
		return err
	}
	var d UnsortedDecision
	var err error
	if accept {
		d, err = s.AcceptUnsorted(r.Context(), uid, req.UserID, req.StatusID)
	} else if req.StatusID != 0 {
		err = fmt.Errorf("%w: a decline takes no status_id", ErrBadRequest)
	} else {
		d, err = s.DeclineUnsorted(r.Context(), uid, req.UserID)
	}
	if err != nil {
		return err
	}
	return reply(w, d)
}

func (s *Server) ctlCompleteTask(w http.ResponseWriter, r *http.Request, id int64) error {
	var req struct {
		Result string `json:"result"`
	}
	if err := decodeOptional(r, &req); err != nil {
		return err
	}
	if err := s.CompleteTask(id, req.Result); err != nil {
		return err
	}
	return replyOK(w)
}

// decodeOptional is decode for a body that may be left empty.
func decodeOptional(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody))
	if err != nil {
		return fmt.Errorf("%w: body: %w", ErrBadRequest, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %w", ErrBadRequest, err)
	}
	return nil
}

func (s *Server) ctlLatency(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		MS int64 `json:"ms"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.MS < 0 || req.MS > int64(time.Hour/time.Millisecond) {
		return fmt.Errorf("%w: ms must be from 0 to 3600000", ErrBadRequest)
	}
	s.SetLatency(time.Duration(req.MS) * time.Millisecond)
	return replyOK(w)
}

func (s *Server) ctlFail(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Count  int `json:"count"`
		Status int `json:"status"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Count < 0 || (req.Status != 0 && (req.Status < 400 || req.Status > 599)) {
		return fmt.Errorf("%w: count must not be negative and status must be 4xx or 5xx", ErrBadRequest)
	}
	s.FailNext(req.Count, req.Status)
	return replyOK(w)
}

func (s *Server) ctlHang(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Count   *int  `json:"count"`
		Enabled *bool `json:"enabled"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if (req.Count == nil) == (req.Enabled == nil) {
		return fmt.Errorf("%w: send either count or enabled", ErrBadRequest)
	}
	if req.Count != nil {
		if *req.Count < 0 {
			return fmt.Errorf("%w: count must not be negative", ErrBadRequest)
		}
		s.Hang(*req.Count)
	} else {
		s.HangAll(*req.Enabled)
	}
	return replyOK(w)
}

func (s *Server) ctlResponsible(w http.ResponseWriter, r *http.Request) error {
	var req ResponsibleUpdate
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := s.SetResponsible(r.Context(), req)
	if err != nil {
		return err
	}
	return reply(w, res)
}

func (s *Server) ctlWebhook(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		URL string `json:"url"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.SetWebhookURL(req.URL); err != nil {
		return err
	}
	return replyOK(w)
}

func (s *Server) ctlRateLimit(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		PerSecond int `json:"per_second"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	s.SetRateLimit(req.PerSecond)
	return replyOK(w)
}

func (s *Server) ctlExpireTokens(w http.ResponseWriter, _ *http.Request) error {
	s.ExpireTokens()
	return replyOK(w)
}

// ctlSeed replaces the data with a posted seed, YAML or JSON.
func (s *Server) ctlSeed(w http.ResponseWriter, r *http.Request) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody))
	if err != nil {
		return fmt.Errorf("%w: read seed: %w", ErrBadRequest, err)
	}
	seed, err := ParseSeed(data)
	if err != nil {
		return fmt.Errorf("%w: seed: %w", ErrBadRequest, err)
	}
	if err := s.Reseed(seed); err != nil {
		return fmt.Errorf("%w: seed: %w", ErrBadRequest, err)
	}
	return replyOK(w)
}

// decode reads a strict JSON body: an unknown field is a typo the test author should see.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %w", ErrBadRequest, err)
	}
	return nil
}

func reply(w http.ResponseWriter, v any) error {
	writeJSON(w, "application/json", http.StatusOK, v)
	return nil
}

func replyOK(w http.ResponseWriter) error { return reply(w, map[string]bool{"ok": true}) }
