package sandbox

import (
	"io"
	"net/http"
	"time"
)

// faults are the injected misbehaviours; the counters are consumed by API requests in order.
type faults struct {
	latency    time.Duration
	failCount  int
	failStatus int
	hangCount  int
	hangAll    bool
}

// SetLatency adds d to every API request from now on (0 removes it).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.faults.latency = max(d, 0)
	s.mu.Unlock()
}

// FailNext answers the next n API requests with status (500 when 0) before any other check.
func (s *Server) FailNext(n, status int) {
	if status == 0 {
		status = http.StatusInternalServerError
	}
	s.mu.Lock()
	s.faults.failCount, s.faults.failStatus = max(n, 0), status
	s.mu.Unlock()
}

// Hang makes the next n API requests never answer: each waits until its client gives up
// (the request context ends) or the Server is closed.
func (s *Server) Hang(n int) {
	s.mu.Lock()
	s.faults.hangCount = max(n, 0)
	s.mu.Unlock()
}

// HangAll makes every API request hang while on.
func (s *Server) HangAll(on bool) {
	s.mu.Lock()
	s.faults.hangAll = on
	s.mu.Unlock()
}

// injectFaults applies hang, fail and latency; false means the request has been answered.
func (s *Server) injectFaults(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	f := &s.faults
	hang := f.hangAll || f.hangCount > 0
	if !f.hangAll && f.hangCount > 0 {
		f.hangCount--
	}
	failStatus := 0
	if !hang && f.failCount > 0 {
		f.failCount--
		failStatus = f.failStatus
	}
	latency := f.latency
	s.mu.Unlock()

	switch {
	case hang:
		// Read the body first: the server notices a client that gave up only once it does.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxControlBody))
		if s.onHang != nil {
			s.onHang()
		}
		select {
		case <-r.Context().Done():
		case <-s.closed:
			writeProblem(w, http.StatusServiceUnavailable, "sandbox closed")
		}
		return false
	case failStatus != 0:
		writeProblem(w, failStatus, "failure injected by the sandbox")
		return false
	case latency > 0:
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return false
		case <-s.closed:
			writeProblem(w, http.StatusServiceUnavailable, "sandbox closed")
			return false
		}
	}
	return true
}
