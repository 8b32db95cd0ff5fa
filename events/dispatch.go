package events

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"
)

// Dispatcher hands each envelope to the handler of its kind, decoded once. It is the
// queue's one handler: an envelope of a kind nobody handles, or one that does not decode,
// is dead-lettered; a handler's Dropped error is logged and acknowledged.
type Dispatcher struct {
	handlers map[Kind]func(context.Context, Envelope) error
	keys     map[Kind]func(Envelope) (string, error)
	log      zerolog.Logger
}

// NewDispatcher makes a dispatcher with no handlers; log receives the drops.
func NewDispatcher(log zerolog.Logger) *Dispatcher {
	return &Dispatcher{handlers: map[Kind]func(context.Context, Envelope) error{},
		keys: map[Kind]func(Envelope) (string, error){}, log: log}
}

// On makes h the handler of t's kind (replacing an earlier one). Register every kind
// before the queue runs.
func On[T any](d *Dispatcher, t Type[T], h func(context.Context, T) error) {
	d.handlers[t.Kind] = func(ctx context.Context, e Envelope) error {
		v, err := t.Decode(e)
		if err != nil {
			return err
		}
		return h(ctx, v)
	}
	if t.Key == nil {
		delete(d.keys, t.Kind)
		return
	}
	d.keys[t.Kind] = func(e Envelope) (string, error) {
		v, err := t.Decode(e)
		if err != nil {
			return "", err
		}
		return t.Key(v), nil
	}
}

// Handle is the queue's handler: nil acknowledges e, an error is classified by Classify.
func (d *Dispatcher) Handle(ctx context.Context, e Envelope) error {
	h, ok := d.handlers[e.Kind]
	if !ok {
		return Permanent(fmt.Errorf("event %s: no handler for %q events", e.ID, e.Kind))
	}
	err := h(ctx, e)
	if Classify(err) == Drop {
		d.log.Debug().Str("event", e.ID).Str("kind", string(e.Kind)).Str("reason", err.Error()).Msg("event dropped")
		return nil
	}
	return err
}

// OrderKey is e's order key: the one its producer stored, or for an envelope of a keyed
// type stored without one (by a crmlink before the key was stored, by hand, or a call
// from a withheld number, which has none) the one its payload gives, at the cost of a
// second decode.
func (d *Dispatcher) OrderKey(e Envelope) string {
	if e.Key != "" {
		return e.Key
	}
	key, ok := d.keys[e.Kind]
	if !ok {
		return ""
	}
	k, _ := key(e)
	return k
}
