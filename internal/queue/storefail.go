package queue

import (
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ErrUnavailable is returned while the store cannot take events (a data directory that
// is full, read-only or damaged); the queue keeps trying to reopen it, and a producer
// should answer its source so that it retries later (HTTP 503).
var ErrUnavailable = errors.New("queue: event store unavailable")

// Store failures are retried on their own schedule, not the handler's: the first retry
// after storeBackoffBase, doubling to storeBackoffMax, so that a full or read-only disk
// costs a few attempts (and CRM requests) a minute instead of a hot loop.
const (
	storeBackoffBase = 500 * time.Millisecond
	storeBackoffMax  = time.Minute
	// storeLogEvery bounds how often a failure that goes on is logged again.
	storeLogEvery = time.Minute
)

// StoreBackoff is the pause after the n-th consecutive store failure (1-based).
func StoreBackoff(n int) time.Duration {
	d := storeBackoffBase
	for i := 1; i < n && d < storeBackoffMax; i++ {
		d *= 2
	}
	return min(d, storeBackoffMax)
}

// storeHealth tracks a streak of store failures: it says how long to back off and logs
// the streak's first failure, a reminder at most every storeLogEvery, and the recovery.
type storeHealth struct {
	mu      sync.Mutex
	err     error
	since   time.Time
	streak  int
	lastLog time.Time
	log     zerolog.Logger
}

// failed records a failure and returns the pause before the next attempt.
func (h *storeHealth) failed(err error, msg string) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if h.streak == 0 {
		h.since = now
	}
	h.streak++
	h.err = err
	delay := StoreBackoff(h.streak)
	if h.streak == 1 || now.Sub(h.lastLog) >= storeLogEvery {
		h.lastLog = now
		h.log.Error().Err(err).Int("failures", h.streak).Time("failing_since", h.since).Dur("retry_in", delay).Msg(msg)
	}
	return delay
}

// ok ends a streak of failures.
func (h *storeHealth) ok(msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streak == 0 {
		return
	}
	h.log.Info().Int("failures", h.streak).Dur("failed_for", time.Since(h.since)).Msg(msg)
	h.streak, h.err = 0, nil
}

// pause is the backoff after the current streak's latest failure.
func (h *storeHealth) pause() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return StoreBackoff(h.streak)
}

// state is the error of the current streak; nil when the store works.
func (h *storeHealth) state() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// pause waits d, or less when one of stop closes.
func pause(d time.Duration, stop ...<-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	var a, b <-chan struct{}
	if len(stop) > 0 {
		a = stop[0]
	}
	if len(stop) > 1 {
		b = stop[1]
	}
	select {
	case <-t.C:
	case <-a:
	case <-b:
	}
}
