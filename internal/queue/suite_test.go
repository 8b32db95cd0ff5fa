package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/events"
)

func TestEachEventHandledOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		q := open(t, fastOptions(t))
		rec := newRecorder(nil)
		before := publishN(t, q, 50, "before") // stored while nobody consumes
		startRun(t, q, rec.handle)
		after := publishN(t, q, 50, "after")

		waitStats(t, q, "100 events processed", settledAll(100))
		for _, id := range append(before, after...) {
			calls := rec.callsOf(id)
			require.Len(t, calls, 1, "event %s", id)
			assert.Equal(t, 1, calls[0].Attempts)
			assert.Equal(t, "call_outcome", calls[0].Kind)
			assert.False(t, calls[0].FirstSeen.IsZero())
		}
		assert.Equal(t, 100, rec.distinct())
		assert.Empty(t, deadList(t, q))
	})
}

func TestFailingHandlerIsRetriedWithBackoffThenDead(t *testing.T) {
	cases := []struct {
		name      string
		failures  int // calls that fail before one succeeds
		wantCalls int
		wantDead  bool
	}{
		{"recovers on the third attempt", 2, 3, false},
		{"dead after MaxAttempts", 100, 4, true},
	}
	forEachStore(t, func(t *testing.T, open opener) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				o := fastOptions(t)
				o.MaxAttempts = 4
				o.BackoffBase, o.BackoffMax = 20*time.Millisecond, 40*time.Millisecond
				q := open(t, o)
				var mu sync.Mutex
				var at []time.Time
				rec := newRecorder(func(_ context.Context, e Event) error {
					mu.Lock()
					at = append(at, time.Now())
					mu.Unlock()
					if e.Attempts <= c.failures {
						return fmt.Errorf("amoCRM answered 502 (attempt %d)", e.Attempts)
					}
					return nil
				})
				startRun(t, q, rec.handle)
				require.NoError(t, q.Publish(context.Background(), event("ev", nil)))

				var want func(Stats) bool
				if c.wantDead {
					want = func(s Stats) bool { return s.Dead == 1 && s.Retrying == 0 && s.InFlight == 0 }
				} else {
					want = settledAll(1)
				}
				s := waitStats(t, q, "event settled", want)

				calls := rec.callsOf("ev")
				require.Len(t, calls, c.wantCalls)
				for i, e := range calls {
					assert.Equal(t, i+1, e.Attempts, "attempt numbers count up")
				}
				assert.Empty(t, calls[0].LastError)
				assert.Equal(t, "amoCRM answered 502 (attempt 1)", calls[1].LastError, "the handler sees the previous error")
				// Delays double from the base and stop at the max, each at most 20% shorter.
				mu.Lock()
				for i := 1; i < len(at); i++ {
					want := min(o.BackoffBase<<(i-1), o.BackoffMax)
					assert.GreaterOrEqual(t, at[i].Sub(at[i-1]), want*8/10, "delay before attempt %d", i+1)
				}
				mu.Unlock()
				assert.EqualValues(t, min(c.failures, c.wantCalls), s.Failures)

				dead := deadList(t, q)
				if !c.wantDead {
					assert.Empty(t, dead)
					return
				}
				require.Len(t, dead, 1)
				assert.Equal(t, "ev", dead[0].ID)
				assert.Equal(t, 4, dead[0].Attempts)
				assert.Equal(t, "amoCRM answered 502 (attempt 4)", dead[0].LastError)
				assert.EqualValues(t, 0, s.Processed)
			})
		}
	})
}

func TestPermanentErrorGoesToDeadLettersAtOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		q := open(t, fastOptions(t))
		rec := newRecorder(func(_ context.Context, e Event) error {
			return fmt.Errorf("decode %s: %w", e.Kind, events.Permanent(errors.New("payload has no phone")))
		})
		startRun(t, q, rec.handle)
		require.NoError(t, q.Publish(context.Background(), event("bad", map[string]string{"x": "y"})))

		waitStats(t, q, "event dead", func(s Stats) bool { return s.Dead == 1 && s.InFlight == 0 })
		assert.Len(t, rec.callsOf("bad"), 1)
		dead := deadList(t, q)
		require.Len(t, dead, 1)
		assert.Equal(t, 1, dead[0].Attempts)
		assert.Contains(t, dead[0].LastError, "payload has no phone")
		assert.JSONEq(t, `{"x":"y"}`, string(dead[0].Payload), "the payload survives the dead-letter list")
	})
}

func TestReplayDeliversADeadEventAgain(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		q := open(t, fastOptions(t))
		var crmDown atomic.Bool
		crmDown.Store(true)
		rec := newRecorder(func(context.Context, Event) error {
			if crmDown.Load() {
				return events.Permanent(errors.New("pipeline 42 does not exist"))
			}
			return nil
		})
		startRun(t, q, rec.handle)
		require.NoError(t, q.Publish(context.Background(), event("ev", nil)))
		waitStats(t, q, "event dead", func(s Stats) bool { return s.Dead == 1 && s.InFlight == 0 })

		require.ErrorIs(t, q.Replay(context.Background(), "no-such-event"), ErrNotFound)
		crmDown.Store(false) // the operator fixed the pipeline
		require.NoError(t, q.Replay(context.Background(), "ev"))
		waitStats(t, q, "replayed event processed", func(s Stats) bool { return s.Processed == 1 && s.Dead == 0 })

		calls := rec.callsOf("ev")
		require.Len(t, calls, 2)
		assert.Equal(t, 1, calls[1].Attempts, "replay resets the attempts")
		assert.Contains(t, calls[1].LastError, "pipeline 42", "replay keeps the last error as history")
		assert.Empty(t, deadList(t, q))
		require.ErrorIs(t, q.Replay(context.Background(), "ev"), ErrNotFound, "a replayed event is no longer dead")
	})
}

func TestOrderingKeyIsRespectedUnderConcurrency(t *testing.T) {
	const keys, perKey = 6, 15
	type msg struct {
		Phone string `json:"phone"`
		Seq   int    `json:"seq"`
	}
	forEachStore(t, func(t *testing.T, open opener) {
		o := fastOptions(t)
		o.Concurrency = 8
		o.OrderKey = func(e Event) string {
			var m msg
			_ = json.Unmarshal(e.Payload, &m)
			return m.Phone
		}
		q := open(t, o)

		var (
			mu        sync.Mutex
			running   = map[string]int{}
			seqs      = map[string][]int{} // every call, in call order
			overlap   []string
			now, peak int
		)
		rec := newRecorder(func(_ context.Context, e Event) error {
			var m msg
			require.NoError(t, json.Unmarshal(e.Payload, &m))
			mu.Lock()
			running[m.Phone]++
			if running[m.Phone] > 1 {
				overlap = append(overlap, e.ID)
			}
			seqs[m.Phone] = append(seqs[m.Phone], m.Seq)
			now++
			peak = max(peak, now)
			mu.Unlock()
			time.Sleep(2 * time.Millisecond) // work, so that events overlap
			mu.Lock()
			running[m.Phone]--
			now--
			mu.Unlock()
			// One event of the first client fails once: the later ones must wait for it.
			if m.Phone == "+70000000000" && m.Seq == 3 && e.Attempts == 1 {
				return errors.New("amoCRM timeout")
			}
			return nil
		})
		for i := range perKey {
			for k := range keys {
				phone := fmt.Sprintf("+7000000000%d", k)
				require.NoError(t, q.Publish(context.Background(), event(fmt.Sprintf("%s/%02d", phone, i), msg{phone, i})))
			}
		}
		startRun(t, q, rec.handle)
		waitStats(t, q, "all events processed", settledAll(keys*perKey))

		mu.Lock()
		defer mu.Unlock()
		assert.Empty(t, overlap, "events of one key ran in parallel")
		assert.GreaterOrEqual(t, peak, 2, "different keys run in parallel")
		for k := range keys {
			phone := fmt.Sprintf("+7000000000%d", k)
			want := make([]int, 0, perKey+1)
			for i := range perKey {
				want = append(want, i)
				if k == 0 && i == 3 {
					want = append(want, 3) // the retry comes before seq 4
				}
			}
			assert.Equal(t, want, seqs[phone], "calls of %s in order", phone)
		}
	})
}

func TestStatsCountEachState(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		q := open(t, fastOptions(t))
		before := time.Now()
		publishN(t, q, 3, "held")
		s := stats(t, q)
		assert.WithinRange(t, s.OldestAt, before.Add(-time.Second), time.Now(), "when the oldest waiting event was stored")
		s.OldestAt = time.Time{}
		assert.Equal(t, Stats{Pending: 3}, s, "stored, nobody consuming")

		release := make(chan struct{})
		rec := newRecorder(func(ctx context.Context, e Event) error {
			if e.ID == "broken" {
				return events.Permanent(errors.New("bad"))
			}
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		startRun(t, q, rec.handle)
		waitStats(t, q, "three in flight", func(s Stats) bool { return s.InFlight == 3 && s.Pending == 0 })
		close(release)
		require.NoError(t, q.Publish(context.Background(), event("broken", nil)))
		s = waitStats(t, q, "settled", func(s Stats) bool { return s.Processed == 3 && s.Dead == 1 && s.InFlight == 0 })
		assert.Equal(t, Stats{Dead: 1, Processed: 3, Failures: 1}, s)
	})
}

func TestShutdownLetsRunningHandlersFinishThenRedeliversCancelled(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		o := fastOptions(t)
		o.ShutdownGrace = 100 * time.Millisecond
		q := open(t, o)
		started := make(chan string, 2)
		first := newRecorder(func(ctx context.Context, e Event) error {
			started <- e.ID
			if e.ID == "quick" {
				time.Sleep(20 * time.Millisecond) // finishes within the grace
				return nil
			}
			<-ctx.Done() // ignores the shutdown until cancelled
			return ctx.Err()
		})
		require.NoError(t, q.Publish(context.Background(), event("quick", nil)))
		require.NoError(t, q.Publish(context.Background(), event("stuck", nil)))
		stop := startRun(t, q, first.handle)
		<-started
		<-started
		stop()

		second := newRecorder(nil)
		startRun(t, q, second.handle)
		waitStats(t, q, "both processed", settledAll(2))
		assert.Len(t, first.callsOf("quick"), 1)
		assert.Empty(t, second.callsOf("quick"), "finished within the grace: not delivered again")
		require.Len(t, second.callsOf("stuck"), 1, "cancelled by the shutdown: delivered again")
		assert.Equal(t, 1, second.callsOf("stuck")[0].Attempts, "a cancelled call is not a failed attempt")
	})
}

func TestHandlerPanicIsAFailedAttempt(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		o := fastOptions(t)
		o.Logger = o.Logger.Level(100) // the panic is logged with its stack; keep test output short
		q := open(t, o)
		rec := newRecorder(func(_ context.Context, e Event) error {
			if e.Attempts == 1 {
				panic("nil map")
			}
			return nil
		})
		startRun(t, q, rec.handle)
		require.NoError(t, q.Publish(context.Background(), event("ev", nil)))
		waitStats(t, q, "processed", settledAll(1))
		calls := rec.callsOf("ev")
		require.Len(t, calls, 2)
		assert.Contains(t, calls[1].LastError, "handler panicked: nil map")
	})
}

func TestPublishRejectsEventsItCannotStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		q := open(t, fastOptions(t))
		for _, c := range []struct {
			name string
			e    Event
			want string
		}{
			{"no id", Event{Kind: "chat_event"}, "no ID"},
			{"no kind", Event{ID: "1"}, "no Kind"},
			{"payload not JSON", Event{ID: "1", Kind: "chat_event", Payload: json.RawMessage("{")}, "not valid JSON"},
		} {
			t.Run(c.name, func(t *testing.T) {
				assert.ErrorContains(t, q.Publish(context.Background(), c.e), c.want)
			})
		}
		assert.Equal(t, Stats{}, stats(t, q))
	})
}

func TestRunOnceAndClose(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		q := open(t, fastOptions(t))
		startRun(t, q, newRecorder(nil).handle)
		// Publish is durable once it returns, so it marks a point where Run is active.
		require.NoError(t, q.Publish(context.Background(), event("a", nil)))
		waitStats(t, q, "processed", settledAll(1))
		assert.ErrorIs(t, q.Run(context.Background(), newRecorder(nil).handle), ErrRunning)

		require.NoError(t, q.Close(), "Close stops the running Run")
		assert.ErrorIs(t, q.Publish(context.Background(), event("b", nil)), ErrClosed)
		assert.ErrorIs(t, q.Run(context.Background(), newRecorder(nil).handle), ErrClosed)
	})
}
