package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"

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

// Outbox is where producers hand events to the event path: each encoded once, with its
// order key, and stored durably (the queue) before the producer goes on.
type Outbox struct {
	store   func(context.Context, Envelope) error
	calls   Type[routing.CallOutcome]
	observe func(routing.CallOutcome)
	log     zerolog.Logger
}

// NewOutbox is an outbox that stores nothing until Open (no CRM: calls create nothing);
// observe, when set, sees every finished call first (metrics, tests).
func NewOutbox(observe func(routing.CallOutcome), log zerolog.Logger) *Outbox {
	return &Outbox{observe: observe, log: log}
}

// Open makes store keep the events (the queue's Publish), call outcomes encoded as calls.
// Call it before the producers start.
func (o *Outbox) Open(calls Type[routing.CallOutcome], store func(context.Context, Envelope) error) {
	o.calls, o.store = calls, store
}

// Publish stores an encoded event; it returns once the event is durably stored.
func (o *Outbox) Publish(ctx context.Context, e Envelope) error { return o.store(ctx, e) }

// CallOutcome queues a finished call for the call scenarios (the PBX front ends' OnOutcome);
// it returns once the outcome is durably stored. Nothing else holds the call, so one that
// cannot be stored is logged whole, for an operator to enter again.
func (o *Outbox) CallOutcome(out routing.CallOutcome) {
	if o.observe != nil {
		o.observe(out)
	}
	if o.store == nil {
		return // no CRM: calls create nothing
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := o.calls.Encode(out)
	if err == nil {
		err = o.store(ctx, e)
	}
	if err != nil {
		o.log.Error().Err(err).Interface("outcome", out).Msg("call outcome NOT queued; its CRM records will be missing")
	}
}

// CRMChange queues a responsible change amoCRM reported, for the chat sync; it returns
// once the change is durably stored.
func (o *Outbox) CRMChange(ctx context.Context, ch crm.ResponsibleChange) error {
	e, err := CRMChanges.Encode(CRMChange(ch))
	if err != nil {
		return err
	}
	return o.store(ctx, e)
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

// Class is what becomes of an event whose handler returned an error.
type Class int

const (
	// Done: the handler succeeded (a nil error).
	Done Class = iota
	// Retry: the failure can pass (a CRM or chat platform down, rate limited, refusing
	// the credentials, a network error, a timeout): the queue retries with backoff until
	// its horizon (queue.retry_for), then dead-letters the event.
	Retry
	// DeadLetter: retrying sends the same request again and cannot succeed (a payload no
	// handler can read, data the CRM or the chat platform refused as invalid): the event
	// goes to the dead-letter list at once, for an operator to look at and replay.
	DeadLetter
	// Drop: the event is acknowledged without action on purpose (a feature that is off);
	// the dispatcher logs why.
	Drop
)

func (c Class) String() string {
	switch c {
	case Done:
		return "done"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead_letter"
	case Drop:
		return "drop"
	}
	return "unknown"
}

// ErrPermanent is what errors.Is finds in an error marked by Permanent.
var ErrPermanent = errors.New("permanent")

// Permanent marks err as one no retry can fix: the event goes to the dead-letter list
// (nil stays nil). The message is err's own.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (e permanentError) Error() string        { return e.err.Error() }
func (e permanentError) Unwrap() error        { return e.err }
func (e permanentError) Is(target error) bool { return target == ErrPermanent }

// Dropped is a handler's way of saying the event needs no action, on purpose: the
// dispatcher logs why and acknowledges it.
func Dropped(why string) error { return dropError{why} }

type dropError struct{ why string }

func (e dropError) Error() string { return "dropped: " + e.why }

// StatusCoder is an error carrying the HTTP status a platform answered (amoCRM's
// *amocrm.ValidationError, the chat platforms' *apiclient.StatusError).
type StatusCoder interface{ HTTPStatus() int }

// ClassOfStatus is what an answer with this HTTP status makes of an event, the same for
// amoCRM and the chat platforms: a validation refusal (400, 422) is the same refusal next
// time; anything else non-2xx (401, 403, 404, 429, 5xx) can pass.
func ClassOfStatus(status int) Class {
	switch {
	case status >= 200 && status < 300:
		return Done
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		return DeadLetter
	}
	return Retry
}

// Classify says what becomes of an event whose handler returned err. The outermost
// verdict in err's chain counts: Dropped, Permanent, an HTTP status (ClassOfStatus), or
// crm.ErrRejected (a CRM refusal without a status, as fakes report it); anything else is
// worth a retry. Of errors joined together (several writes that failed), the event is
// retried when any of them is worth a retry: a retry repeats only what failed.
func Classify(err error) Class {
	if err == nil {
		return Done
	}
	switch e := err.(type) {
	case dropError:
		return Drop
	case permanentError:
		return DeadLetter
	case StatusCoder:
		if ClassOfStatus(e.HTTPStatus()) == DeadLetter {
			return DeadLetter
		}
		return Retry
	case interface{ Unwrap() []error }:
		verdict := Done
		for _, part := range e.Unwrap() {
			switch c := Classify(part); {
			case c == Retry:
				return Retry
			case c == DeadLetter || verdict == Done:
				verdict = c
			}
		}
		if verdict == Done {
			return Retry
		}
		return verdict
	}
	if err == crm.ErrRejected {
		return DeadLetter
	}
	if is, ok := err.(interface{ Is(error) bool }); ok && is.Is(crm.ErrRejected) {
		return DeadLetter
	}
	if inner := errors.Unwrap(err); inner != nil {
		return Classify(inner)
	}
	return Retry
}

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

// ParseID reads an id a step recorded; a value that is not one is permanent.
func ParseID(v []byte) (int64, error) {
	id, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, Permanent(fmt.Errorf("stored id %q is not a number", v))
	}
	return id, nil
}

// Ran says how a step of RunOnce came to be done.
type Ran int

const (
	// RanNow: this attempt performed the step.
	RanNow Ran = iota
	// RanEarlier: an earlier attempt performed and recorded it.
	RanEarlier
	// RanAdopted: an earlier attempt performed it but died before recording it; Find found
	// what it wrote, and that was recorded instead of writing it again.
	RanAdopted
)

// Once is a step that creates something the CRM cannot refuse to create twice (amoCRM has
// no idempotency key for contacts, leads, tasks or notes: a request_id is only echoed
// back). A step whose write succeeded but whose record was lost (the process died between
// the two) is looked for before it is performed again, and only then: lookups cost CRM
// requests, so the first attempt makes none.
type Once struct {
	// Resumed: an earlier attempt stored the plan the step belongs to (Plan's resumed), so
	// it may have performed the step.
	Resumed bool
	// Mark, for a step no plan announces (Resumed says nothing about it): a mark is stored
	// before Do, and a later attempt that finds it looks first. One State write more, no
	// CRM request.
	Mark bool
	// Find looks in the CRM for what an interrupted attempt wrote: the value to record and
	// whether it found it.
	Find func() (value []byte, found bool, err error)
	// Do performs the step; its value is recorded.
	Do func() ([]byte, error)
}

// begunSuffix names the mark of Once.Mark.
const begunSuffix = ":begun"

// RunOnce runs o's step once per event: a step recorded before returns its value; one an
// earlier attempt may have performed (o.Resumed, or its begun mark) is looked for with
// o.Find first; otherwise o.Do performs it. The value is recorded either way.
func (s Steps) RunOnce(ctx context.Context, step string, o Once) (value []byte, ran Ran, err error) {
	v, ok, err := s.Done(ctx, step)
	if err != nil {
		return nil, RanNow, fmt.Errorf("load %s: %w", step, err)
	}
	if ok {
		return v, RanEarlier, nil
	}
	maybe := o.Resumed
	if o.Mark {
		_, begun, err := s.state.Load(ctx, s.Key(step)+begunSuffix)
		if err != nil {
			return nil, RanNow, fmt.Errorf("load %s mark: %w", step, err)
		}
		maybe = maybe || begun
		if !begun {
			if err := s.state.MarkDone(ctx, s.Key(step)+begunSuffix, s.ttl); err != nil {
				return nil, RanNow, fmt.Errorf("mark %s begun: %w", step, err)
			}
		}
	}
	ran = RanNow
	found := false
	if maybe && o.Find != nil {
		if v, found, err = o.Find(); err != nil {
			return nil, RanNow, fmt.Errorf("look for an earlier %s: %w", step, err)
		}
		if found {
			ran = RanAdopted
		}
	}
	if !found {
		if v, err = o.Do(); err != nil {
			return nil, RanNow, err
		}
	}
	if v == nil {
		v = []byte{}
	}
	if err := s.Record(ctx, step, v); err != nil {
		return nil, ran, fmt.Errorf("save %s: %w", step, err)
	}
	return v, ran, nil
}

// RunOnceID is RunOnce for a step that creates one entity: it records and returns its id.
func (s Steps) RunOnceID(ctx context.Context, step string, o Once) (int64, Ran, error) {
	v, ran, err := s.RunOnce(ctx, step, o)
	if err != nil {
		return 0, ran, err
	}
	id, err := ParseID(v)
	if err != nil {
		return 0, ran, fmt.Errorf("stored %s id: %w", step, err)
	}
	return id, ran, nil
}

// IDValue is how a step that created one entity records its id.
func IDValue(id int64) []byte { return []byte(strconv.FormatInt(id, 10)) }
