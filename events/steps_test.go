package events_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/testrig"
)

// stores are the executor's State implementations, each tested alike.
var stores = []struct {
	name string
	new  func(t *testing.T) events.State
}{
	{"memory", func(*testing.T) events.State { return events.NewMemoryState() }},
	{"redis", func(t *testing.T) events.State {
		return events.NewRedisState(testrig.Redis(t), "test:steps:"+t.Name()+":")
	}},
	{"file", func(t *testing.T) events.State {
		s, err := events.OpenFileState(filepath.Join(t.TempDir(), "state.jsonl"))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}},
}

// TestStepsRunOncePerEvent: a second delivery of an event loads the plan the first stored
// (not a new one) and skips the steps the first completed, getting back what they recorded.
func TestStepsRunOncePerEvent(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			state := st.new(t)
			plans, creates, notes := 0, 0, 0
			deliver := func() (plan string, resumed bool, id int64, idDone, noteDone bool) {
				x := events.NewSteps(state, "leads:jivo:c1", time.Hour)
				resumed, err := x.Plan(ctx, func(b []byte) error { plan = string(b); return nil }, func() ([]byte, error) {
					plans++
					plan = "plan " + string(rune('0'+plans))
					return []byte(plan), nil
				})
				require.NoError(t, err)
				v, ran, err := x.RunOnce(ctx, "contact", events.Once{Resumed: resumed, Do: func() ([]byte, error) {
					creates++
					return events.IDValue(1000 + int64(creates)), nil
				}})
				require.NoError(t, err)
				idDone = ran == events.RanEarlier
				id, err = events.ParseID(v)
				require.NoError(t, err)
				_, noteDone, err = x.Run(ctx, "note", func() ([]byte, error) { notes++; return nil, nil })
				require.NoError(t, err)
				return plan, resumed, id, idDone, noteDone
			}
			plan, resumed, id, idDone, noteDone := deliver()
			assert.Equal(t, []any{"plan 1", false, int64(1001), false, false}, []any{plan, resumed, id, idDone, noteDone})
			plan, resumed, id, idDone, noteDone = deliver()
			assert.Equal(t, []any{"plan 1", true, int64(1001), true, true}, []any{plan, resumed, id, idDone, noteDone})
			assert.Equal(t, []int{1, 1, 1}, []int{plans, creates, notes})

			v, done, err := state.Load(ctx, "leads:jivo:c1:contact")
			require.NoError(t, err)
			assert.True(t, done)
			assert.Equal(t, "1001", string(v), "the step's key is the event's key and the step's name")
		})
	}
}

// TestStepsPlanFailures: nothing stored when the planner has nothing to do or fails (the
// next delivery plans again); a failed step is not recorded; a stored plan or id that
// does not read is permanent (dead letter, not retried forever).
func TestStepsPlanFailures(t *testing.T) {
	ctx := context.Background()
	state := events.NewMemoryState()
	x := events.NewSteps(state, "call:a", time.Hour)
	boom := errors.New("crm down")

	_, err := x.Plan(ctx, func([]byte) error { return nil }, func() ([]byte, error) { return nil, boom })
	assert.ErrorIs(t, err, boom)
	_, err = x.Plan(ctx, func([]byte) error { return nil }, func() ([]byte, error) { return nil, nil })
	require.NoError(t, err)
	_, stored, _ := state.Load(ctx, "call:a:plan")
	assert.False(t, stored, "no plan, nothing stored")

	_, _, err = x.Run(ctx, "note", func() ([]byte, error) { return nil, boom })
	assert.ErrorIs(t, err, boom)
	_, done, _ := state.Load(ctx, "call:a:note")
	assert.False(t, done, "a failed step is not recorded")

	require.NoError(t, state.Save(ctx, "call:a:plan", []byte("{"), time.Hour))
	_, err = x.Plan(ctx, func([]byte) error { return errors.New("bad json") }, func() ([]byte, error) { return []byte("p"), nil })
	assert.Equal(t, events.DeadLetter, events.Classify(err), "%v", err)

	require.NoError(t, state.Save(ctx, "call:a:contact", []byte("x"), time.Hour))
	v, _, err := x.RunOnce(ctx, "contact", events.Once{Do: func() ([]byte, error) { return events.IDValue(1), nil }})
	require.NoError(t, err)
	_, err = events.ParseID(v)
	assert.Equal(t, events.DeadLetter, events.Classify(err), "%v", err)
}
