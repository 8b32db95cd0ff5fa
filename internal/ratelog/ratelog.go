// Package ratelog bounds how often one kind of warning reaches the log, so that a flood of
// refused requests (a scan, a wrong token retried in a loop) costs a line per interval
// instead of a line per request. What was left out is counted in the next line.
package ratelog

import (
	"sync"
	"time"
)

// DefaultInterval is how often a refused-request warning may be logged.
const DefaultInterval = 10 * time.Second

// Limiter lets one event per interval through and counts the others.
type Limiter struct {
	interval time.Duration
	now      func() time.Time

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// New returns a limiter letting one event per interval through.
func New(interval time.Duration) *Limiter {
	return &Limiter{interval: interval, now: time.Now}
}

// Allow reports whether this event may be logged, and how many events were held back
// since the last one that was (to put on the line as "suppressed").
func (l *Limiter) Allow() (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.suppressed++
		return false, 0
	}
	l.last = now
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
