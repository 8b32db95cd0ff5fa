package queue

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// outageRun is what the retry schedule makes of one event during a CRM outage: every
// attempt before outageEnd fails, the first one after it succeeds.
type outageRun struct {
	attempts    int
	dead        bool
	settledAt   time.Duration // since the first attempt: delivered, or dead-lettered
	longestWait time.Duration
}

func simulateOutage(o Options, outage time.Duration) outageRun {
	start := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	now := start
	ev := Event{ID: "e1", Kind: "call_outcome"}
	var r outageRun
	for {
		ev.Attempts++
		r.attempts = ev.Attempts
		r.settledAt = now.Sub(start)
		if now.Sub(start) >= outage {
			return r
		}
		ev.failed(errors.New("amoCRM answered 503"), now)
		delay, dead := o.afterFailure(ev, now)
		if dead {
			r.dead = true
			return r
		}
		r.longestWait = max(r.longestWait, delay)
		now = now.Add(delay)
	}
}

// An amoCRM maintenance window lasts tens of minutes: the events of the calls made during
// it must reach the CRM when it is back, not wait in the dead-letter list for a replay.
func TestRetryScheduleRidesOutAnOutage(t *testing.T) {
	defaults, err := Options{}.withDefaults()
	require.NoError(t, err)
	halfHour := defaults
	halfHour.RetryFor = 30 * time.Minute
	for _, c := range []struct {
		name     string
		o        Options
		outage   time.Duration
		wantDead bool
	}{
		{"defaults: a 2-minute blip", defaults, 2 * time.Minute, false},
		{"defaults: a 40-minute maintenance window", defaults, 40 * time.Minute, false},
		{"defaults: a 110-minute outage", defaults, 110 * time.Minute, false},
		{"defaults: a 3-hour outage outlasts the horizon", defaults, 3 * time.Hour, true},
		{"retry_for 30m: a 25-minute outage", halfHour, 25 * time.Minute, false},
		{"retry_for 30m: a 45-minute outage", halfHour, 45 * time.Minute, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			for range 20 { // the jitter is random: every draw must keep the promise
				r := simulateOutage(c.o, c.outage)
				require.Equal(t, c.wantDead, r.dead, "after %d attempts at %s", r.attempts, r.settledAt)
				assert.LessOrEqual(t, r.longestWait, c.o.BackoffMax, "the backoff is capped")
				if r.dead {
					assert.GreaterOrEqual(t, r.settledAt, c.o.RetryFor, "dead-lettered before the horizon")
					assert.Less(t, r.settledAt, c.o.RetryFor+c.o.BackoffMax, "kept retrying past the horizon")
					continue
				}
				assert.GreaterOrEqual(t, r.settledAt, c.outage)
				assert.Less(t, r.settledAt, c.outage+c.o.BackoffMax, "delivered within one capped backoff of the CRM coming back")
			}
		})
	}
}

func TestRetryScheduleDoublesUpToTheCap(t *testing.T) {
	o, err := Options{Jitter: 1e-9}.withDefaults()
	require.NoError(t, err)
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300}
	for i, w := range want {
		assert.InDelta(t, float64(w*time.Second), float64(o.backoff(i+1)), float64(time.Millisecond), "delay after failure %d", i+1)
	}
}

// A replayed event gets a new horizon: its old failures do not send it straight back.
func TestReplayedEventStartsANewHorizon(t *testing.T) {
	o, err := Options{RetryFor: time.Hour}.withDefaults()
	require.NoError(t, err)
	long := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ev := Event{Attempts: 1, FailingSince: long} // replayed: attempts reset, old failing_since kept
	now := long.Add(72 * time.Hour)
	ev.failed(errors.New("503"), now)
	_, dead := o.afterFailure(ev, now)
	assert.False(t, dead)
	assert.Equal(t, now, ev.FailingSince)
}

// The same through a real store: an outage longer than the old eight attempts' worth of
// backoff ends in delivery, and a handler that never recovers is dead-lettered once the
// horizon has passed since its first failure, not before.
func TestEventsAreRetriedForTheHorizon(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		o := fastOptions(t)
		o.BackoffBase, o.BackoffMax = 5*time.Millisecond, 20*time.Millisecond
		// Long enough for a dozen attempts on a loaded machine (each attempt is a store
		// write); the outage ends at an attempt count, not at a time, so the test does not
		// depend on how fast the machine is.
		o.RetryFor = 3 * time.Second
		q := open(t, o)
		var recovered atomic.Bool
		const outageAttempts = 12 // more than the old fixed eight
		rec := newRecorder(func(_ context.Context, e Event) error {
			if e.ID == "outage" && e.Attempts > outageAttempts {
				recovered.Store(true)
				return nil
			}
			return errors.New("amoCRM answered 503")
		})
		startRun(t, q, rec.handle)
		require.NoError(t, q.Publish(context.Background(), event("outage", nil)))
		require.NoError(t, q.Publish(context.Background(), event("never", nil)))

		waitStats(t, q, "one delivered, one dead", func(s Stats) bool {
			return s.Processed == 1 && s.Dead == 1 && s.InFlight == 0 && s.Retrying == 0 && s.Pending == 0
		})
		assert.True(t, recovered.Load())
		assert.Len(t, rec.callsOf("outage"), outageAttempts+1, "retried past the old fixed eight, then delivered")

		dead := deadList(t, q)
		require.Len(t, dead, 1)
		assert.Equal(t, "never", dead[0].ID)
		calls := rec.callsOf("never")
		first, last := calls[0], calls[len(calls)-1]
		assert.Equal(t, last.Attempts, dead[0].Attempts)
		require.False(t, dead[0].FailingSince.IsZero(), "the dead letter says since when it failed")
		assert.GreaterOrEqual(t, time.Since(dead[0].FailingSince), o.RetryFor)
		assert.Equal(t, first.Attempts, 1)
		assert.Equal(t, dead[0].FailingSince, calls[1].FailingSince, "the horizon counts from the first failure")
	})
}
