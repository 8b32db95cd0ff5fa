package queue

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"
)

// Defaults applied when an option is left zero.
const (
	DefaultConcurrency = 4
	// DefaultRetryFor outlasts an amoCRM maintenance window (tens of minutes) with room to
	// spare: an outage shorter than this leaves nothing for an operator to replay.
	DefaultRetryFor       = 2 * time.Hour
	DefaultBackoffBase    = time.Second
	DefaultBackoffMax     = 5 * time.Minute
	DefaultJitter         = 0.2
	DefaultHandlerTimeout = 2 * time.Minute
	DefaultShutdownGrace  = 10 * time.Second
)

// Options configure delivery; both stores share them.
type Options struct {
	// Concurrency is how many events are handled in parallel; default 4.
	Concurrency int
	// OrderKey groups events that must be handled one at a time in publish order, e.g. by
	// the client's phone, so a call outcome and the chat that follows it reach the CRM in
	// that order. An event that fails holds back the later events of its key until its
	// retry. "" (or a nil OrderKey) means no ordering. On Redis the order and the one at a
	// time hold across the instances sharing the stream too (see Redis). For an event whose
	// Key is set OrderKey must return that Key.
	OrderKey func(Event) string
	// RetryFor is how long an event keeps being retried after its first failed attempt:
	// the first attempt that fails RetryFor or later after it sends the event to the
	// dead-letter list. A replayed event starts a new horizon. Default 2 h.
	RetryFor time.Duration
	// MaxAttempts, when positive, also caps the handler calls an event gets; 0 leaves the
	// horizon to RetryFor alone.
	MaxAttempts int
	// BackoffBase is the delay after the first failure, doubled after each further one up
	// to BackoffMax; defaults 1 s and 5 min. BackoffMax is also how long a recovered CRM
	// waits at most for the events that failed during its outage.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Jitter is the fraction of each delay drawn at random (0.2: between 80% and 100% of
	// it) so that events failing together do not retry together; default 0.2.
	Jitter float64
	// HandlerTimeout bounds one handler call; a call that runs out counts as a failure.
	// Default 2 min.
	HandlerTimeout time.Duration
	// ShutdownGrace is how long Run waits for running handlers after its context ends
	// before cancelling them; a cancelled event is delivered again later. Default 10 s.
	ShutdownGrace time.Duration
	// Logger receives retries, dead letters, store recovery and errors.
	Logger zerolog.Logger
	// Hooks observe outcomes, e.g. for metrics.
	Hooks Hooks
}

// Hooks are called after the outcome of a handler call is stored. Each may be nil; they run
// on the worker's goroutine and must not block.
type Hooks struct {
	Acked   func(e Event, took time.Duration)
	Retried func(e Event, err error, delay time.Duration)
	Dead    func(e Event, err error)
}

// withDefaults fills zero options and rejects impossible ones with a sentence that says
// what to change.
func (o Options) withDefaults() (Options, error) {
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.RetryFor == 0 {
		o.RetryFor = DefaultRetryFor
	}
	if o.BackoffBase == 0 {
		o.BackoffBase = DefaultBackoffBase
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = max(DefaultBackoffMax, o.BackoffBase)
	}
	if o.Jitter == 0 {
		o.Jitter = DefaultJitter
	}
	if o.HandlerTimeout == 0 {
		o.HandlerTimeout = DefaultHandlerTimeout
	}
	if o.ShutdownGrace == 0 {
		o.ShutdownGrace = DefaultShutdownGrace
	}
	switch {
	case o.Concurrency < 0:
		return o, fmt.Errorf("queue: Concurrency is %d; use a positive number, or 0 for %d", o.Concurrency, DefaultConcurrency)
	case o.RetryFor < 0:
		return o, fmt.Errorf("queue: RetryFor is %s; use a positive duration, or 0 for %s", o.RetryFor, DefaultRetryFor)
	case o.MaxAttempts < 0:
		return o, fmt.Errorf("queue: MaxAttempts is %d; use a positive number, or 0 for no limit besides RetryFor", o.MaxAttempts)
	case o.BackoffBase < 0 || o.BackoffMax < 0:
		return o, fmt.Errorf("queue: backoff durations must be positive (base %s, max %s)", o.BackoffBase, o.BackoffMax)
	case o.BackoffMax < o.BackoffBase:
		return o, fmt.Errorf("queue: BackoffMax %s is below BackoffBase %s; raise BackoffMax or lower BackoffBase", o.BackoffMax, o.BackoffBase)
	case o.Jitter < 0 || o.Jitter > 1:
		return o, fmt.Errorf("queue: Jitter is %g; use a fraction between 0 and 1", o.Jitter)
	case o.HandlerTimeout < 0 || o.ShutdownGrace < 0:
		return o, fmt.Errorf("queue: HandlerTimeout (%s) and ShutdownGrace (%s) must be positive", o.HandlerTimeout, o.ShutdownGrace)
	}
	return o, nil
}

// storedKey is the order key a store queues e under for all consumers (Redis's key
// queues): e's Key when set, which OrderKey returns for it, otherwise OrderKey's; "" without
// ordering.
func (o Options) storedKey(e Event) string {
	switch {
	case o.OrderKey == nil:
		return ""
	case e.Key != "":
		return e.Key
	}
	return o.OrderKey(e)
}

// afterFailure decides what becomes of an event whose attempt failed at now: the delay
// before its next attempt, or dead once its retries are over. ev.FailingSince is when its
// current run of failures began.
func (o Options) afterFailure(ev Event, now time.Time) (delay time.Duration, dead bool) {
	if o.MaxAttempts > 0 && ev.Attempts >= o.MaxAttempts {
		return 0, true
	}
	if now.Sub(ev.FailingSince) >= o.RetryFor {
		return 0, true
	}
	return o.backoff(ev.Attempts), false
}

// backoff is the delay before the attempt that follows failed attempt number n (1-based).
func (o Options) backoff(n int) time.Duration {
	d := o.BackoffMax
	if n < 1 {
		n = 1
	}
	if n <= 62 {
		if b := o.BackoffBase << (n - 1); b > 0 && b < o.BackoffMax && b>>(n-1) == o.BackoffBase {
			d = b
		}
	}
	return d - time.Duration(o.Jitter*rand.Float64()*float64(d))
}
