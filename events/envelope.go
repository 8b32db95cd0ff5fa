package events

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
)

// Kind names what an envelope carries; the queue stores it next to the payload.
type Kind string

// The kinds of event on the event path. The strings are stored in the queue: never change
// them.
const (
	// KindCallOutcome is a finished call (routing.CallOutcome) for the call scenarios.
	KindCallOutcome Kind = "call_outcome"
	// KindChat is what a chat platform reported (chatbridge.Event) for the responsible
	// sync or the online-chat leads.
	KindChat Kind = "chat_event"
	// KindCRMChange is a responsible change amoCRM reported (CRMChange) for the sync to
	// the chats.
	KindCRMChange Kind = "crm_event"
)

// Envelope is one event as the queue stores it: the payload encoded once, with what the
// queue needs without decoding it.
type Envelope struct {
	// ID is the producer's idempotency key (an Asterisk linkedid, a chat event id).
	ID   string
	Kind Kind
	// Key is the order key: the queue hands the events of one key to their handlers one
	// at a time, in publish order. Empty: no order.
	Key     string
	Payload json.RawMessage
}

// Type is one kind of event with its payload type T: where a payload keeps its
// idempotency key and order key, and what it must hold to be handled.
type Type[T any] struct {
	Kind Kind
	// ID reads the idempotency key.
	ID func(T) string
	// Key reads the order key; nil or "": no order.
	Key func(T) string
	// Check refuses a payload no handler can act on, on both sides of the queue; nil
	// accepts any.
	Check func(T) error
}

// Encode wraps a payload for the queue.
func (t Type[T]) Encode(v T) (Envelope, error) {
	if t.Check != nil {
		if err := t.Check(v); err != nil {
			return Envelope{}, fmt.Errorf("%s: %w", t.Kind, err)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Envelope{}, fmt.Errorf("%s: encode: %w", t.Kind, err)
	}
	e := Envelope{ID: t.ID(v), Kind: t.Kind, Payload: b}
	if t.Key != nil {
		e.Key = t.Key(v)
	}
	return e, nil
}

// Decode reads a payload back. A wrong kind, a payload that is not T's JSON or one
// Check refuses is an error no retry can fix: it is marked Permanent.
func (t Type[T]) Decode(e Envelope) (T, error) {
	var v T
	if e.Kind != t.Kind {
		return v, Permanent(fmt.Errorf("event %s is a %q, not a %q", e.ID, e.Kind, t.Kind))
	}
	if err := json.Unmarshal(e.Payload, &v); err != nil {
		return v, Permanent(fmt.Errorf("%s event %s: %w", t.Kind, e.ID, err))
	}
	if t.Check != nil {
		if err := t.Check(v); err != nil {
			return v, Permanent(fmt.Errorf("%s event %s: %w", t.Kind, e.ID, err))
		}
	}
	return v, nil
}

// PhoneKey is the order key of everything about the client with this number: a client's
// calls and chats meet on it, so a call's note and the chat that follows reach the CRM in
// that order.
func PhoneKey(p crm.Phone) string { return "phone:" + string(p) }

// CallOutcomes is the type of finished calls. The order key is the client's number (the
// caller on an incoming call, the number called on an outgoing one) read with phones, so
// the calls of one client reach the CRM one after the other and a second missed call sees
// the first one's task; a number that does not parse (an internal extension) is its own
// key, and a withheld one has none.
func CallOutcomes(phones *crm.PhoneMemo) Type[routing.CallOutcome] {
	return Type[routing.CallOutcome]{
		Kind: KindCallOutcome,
		ID:   func(o routing.CallOutcome) string { return o.ID },
		Key: func(o routing.CallOutcome) string {
			number := o.Caller
			if o.Direction == routing.Outgoing {
				number = o.Called
			}
			if number == "" {
				return ""
			}
			if p, err := phones.Parse(number); err == nil {
				return PhoneKey(p)
			}
			return "number:" + number
		},
	}
}

// CRMChange is the payload of a KindCRMChange event: a crm.ResponsibleChange with stable
// JSON names (convert with crm.ResponsibleChange(c) and CRMChange(ch)).
type CRMChange struct {
	Entity         crm.EntityType `json:"entity"`
	ID             int64          `json:"id"`
	Responsible    crm.UserID     `json:"responsible"`
	OldResponsible crm.UserID     `json:"old_responsible,omitempty"`
	ModifiedBy     crm.UserID     `json:"modified_by,omitempty"`
	At             time.Time      `json:"at,omitzero"`
}

// CRMChanges is the type of responsible changes amoCRM reported. The ID names the entity,
// the new responsible and the time, so a webhook delivered twice is one event. They have
// no order key: the sync orders them by their time itself.
var CRMChanges = Type[CRMChange]{
	Kind: KindCRMChange,
	ID: func(c CRMChange) string {
		return fmt.Sprintf("crm:%s:%d:%d:%d", c.Entity, c.ID, c.Responsible, c.At.UnixMilli())
	},
	Check: func(c CRMChange) error {
		if c.Entity == "" || c.ID <= 0 {
			return fmt.Errorf("a responsible change needs an entity and a positive id (got %q %d)", c.Entity, c.ID)
		}
		return nil
	},
}
