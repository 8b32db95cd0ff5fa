package sandbox

import "time"

// window is the account's rate limit: a sliding one-second window over the API requests it
// accepted. A request rejected with 429 does not count, so a client that backs off gets in.
type window struct {
	times []time.Time
}

// allow records the request at now and reports true when fewer than limit requests were
// accepted in the second before it; limit < 0 disables the check.
func (w *window) allow(now time.Time, limit int) bool {
	if limit < 0 {
		return true
	}
	cut := now.Add(-time.Second)
	i := 0
	for i < len(w.times) && !w.times[i].After(cut) {
		i++
	}
	w.times = w.times[i:]
	if len(w.times) >= limit {
		return false
	}
	w.times = append(w.times, now)
	return true
}

func (s *Server) allowRate() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.window.allow(s.now(), s.settings.RateLimit)
}

// SetRateLimit changes the requests a sliding second may hold; negative disables, 0 is the
// default of 7.
func (s *Server) SetRateLimit(n int) {
	if n == 0 {
		n = DefaultRateLimit
	}
	s.mu.Lock()
	s.settings.RateLimit = n
	s.mu.Unlock()
}
