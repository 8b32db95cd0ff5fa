package events

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Steps carries out one event's stored plan, each step once, however often the event is
// delivered: the plan is stored before the first step writes anything, and each step's
// result when it completes, in a State every crmlink instance shares. A retry loads the
// same plan (whatever the CRM shows by then) and skips the steps an earlier attempt did.
// The call scenarios and the chat intake both run their events on it.
type Steps struct {
	state State
	key   string // the event's key: "call:<linkedid>", "leads:<chat>"
	ttl   time.Duration
}

// NewSteps is the executor of the event named key (the prefix of every step's key, as
// key + ":" + step), remembering for ttl in state.
func NewSteps(state State, key string, ttl time.Duration) Steps {
	return Steps{state: state, key: key, ttl: ttl}
}

// Key is the State key of the event's step.
func (s Steps) Key(step string) string { return s.key + ":" + step }

// planStep is the step under which the plan itself is stored.
const planStep = "plan"

// Plan hands the stored plan to decode (resumed true), or, when none is stored, stores the
// plan make returns before any step runs (nil: nothing to store, so no step will run). An
// error of make comes back as it is; a stored plan decode refuses is permanent.
func (s Steps) Plan(ctx context.Context, decode func([]byte) error, make func() ([]byte, error)) (resumed bool, err error) {
	b, ok, err := s.state.Load(ctx, s.Key(planStep))
	if err != nil {
		return false, fmt.Errorf("load plan: %w", err)
	}
	if ok {
		if err := decode(b); err != nil {
			return true, Permanent(fmt.Errorf("stored plan unreadable: %w", err))
		}
		return true, nil
	}
	return false, s.Replan(ctx, make)
}

// Replan stores the plan make returns in place of the stored one (nil: nothing stored).
func (s Steps) Replan(ctx context.Context, make func() ([]byte, error)) error {
	enc, err := make()
	if err != nil || enc == nil {
		return err
	}
	if err := s.state.Save(ctx, s.Key(planStep), enc, s.ttl); err != nil {
		return fmt.Errorf("store plan: %w", err)
	}
	return nil
}

// Done reports whether the step was recorded, and the value recorded with it.
func (s Steps) Done(ctx context.Context, step string) (value []byte, done bool, err error) {
	return s.state.Load(ctx, s.Key(step))
}

// Record records the step as done, with value (nil: none).
func (s Steps) Record(ctx context.Context, step string, value []byte) error {
	if value == nil {
		return s.state.MarkDone(ctx, s.Key(step), s.ttl)
	}
	return s.state.Save(ctx, s.Key(step), value, s.ttl)
}

// Run runs do once: a step recorded before returns its value and done true without running.
func (s Steps) Run(ctx context.Context, step string, do func() ([]byte, error)) (value []byte, done bool, err error) {
	v, ok, err := s.Done(ctx, step)
	if err != nil {
		return nil, false, fmt.Errorf("load %s: %w", step, err)
	}
	if ok {
		return v, true, nil
	}
	if v, err = do(); err != nil {
		return nil, false, err
	}
	if v == nil {
		v = []byte{}
	}
	if err := s.Record(ctx, step, v); err != nil {
		return nil, false, fmt.Errorf("save %s: %w", step, err)
	}
	return v, false, nil
}

// RunID is Run for a step that creates one entity: its id is what the step records.
func (s Steps) RunID(ctx context.Context, step string, create func() (int64, error)) (id int64, done bool, err error) {
	v, done, err := s.Run(ctx, step, func() ([]byte, error) {
		id, err := create()
		return []byte(strconv.FormatInt(id, 10)), err
	})
	if err != nil {
		return 0, false, err
	}
	if id, err = ParseID(v); err != nil {
		return 0, false, fmt.Errorf("stored %s id: %w", step, err)
	}
	return id, done, nil
}

// ParseID reads an id a step recorded; a value that is not one is permanent.
func ParseID(v []byte) (int64, error) {
	id, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, Permanent(fmt.Errorf("stored id %q is not a number", v))
	}
	return id, nil
}
