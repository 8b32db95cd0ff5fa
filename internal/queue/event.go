package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/crmlink/crmlink/events"
)

// Event is one unit of work on the event path.
type Event struct {
	// ID is the producer's idempotency key (an Asterisk linkedid, a chat message id): the
	// dead-letter list and Replay address events by it, and handlers pass it on to CRM
	// writes so a redelivery never creates a second lead, task or note.
	ID string `json:"id"`
	// Kind names the event type (an events.Kind: "call_outcome", "chat_event", "crm_event").
	Kind string `json:"kind"`
	// Key is the order key its producer computed when it encoded the payload
	// (events.Envelope.Key), so Options.OrderKey need not decode the payload again.
	Key     string          `json:"key,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
	// Attempts counts handler calls: 1 on the first delivery as the handler sees it, and
	// in the dead-letter list the number of calls made. A crash during a call does not
	// count, the event is simply delivered again. Replay resets it.
	Attempts int `json:"attempts"`
	// FirstSeen is when the event was first published.
	FirstSeen time.Time `json:"first_seen"`
	// LastError is the error of the latest failed attempt; Replay keeps it as history.
	LastError string `json:"last_error,omitempty"`
	// FailingSince is when the event's current run of failed attempts began (its first
	// failure, or the first one after a Replay): Options.RetryFor counts from it.
	FailingSince time.Time `json:"failing_since,omitzero"`
}

// EventOf is the queue event that stores an envelope.
func EventOf(e events.Envelope) Event {
	return Event{ID: e.ID, Kind: string(e.Kind), Key: e.Key, Payload: e.Payload}
}

// Envelope is what the event carries, for the dispatcher.
func (e Event) Envelope() events.Envelope {
	return events.Envelope{ID: e.ID, Kind: events.Kind(e.Kind), Key: e.Key, Payload: e.Payload}
}

// Store stores envelopes in q (the events.Outbox's store); it returns once one is durably
// stored.
func Store(q Queue) func(context.Context, events.Envelope) error {
	return func(ctx context.Context, e events.Envelope) error { return q.Publish(ctx, EventOf(e)) }
}

// Deliver is the handler that hands each event's envelope to h (events.Dispatcher.Handle).
func Deliver(h func(context.Context, events.Envelope) error) Handler {
	return func(ctx context.Context, e Event) error { return h(ctx, e.Envelope()) }
}

// failed records a failed attempt at now.
func (e *Event) failed(err error, now time.Time) {
	e.LastError = err.Error()
	if deadAtOnce(err) {
		e.LastError = "permanent: " + e.LastError
	}
	if e.Attempts <= 1 || e.FailingSince.IsZero() {
		e.FailingSince = now.UTC()
	}
}

// Handler processes one event. Returning nil acknowledges it; an error retries it with
// backoff for Options.RetryFor, and an error events.Classify calls DeadLetter (one marked
// events.Permanent, a validation refusal) sends it to the dead-letter list at once. The
// context ends at the handler timeout or when a shutdown gives up waiting.
type Handler func(ctx context.Context, e Event) error

// Queue stores events durably and delivers them to a Handler at least once.
type Queue interface {
	// Publish returns once e is durably stored; a nil error is the producer's permission to
	// acknowledge its own source. It clears Attempts, LastError and FailingSince and sets
	// FirstSeen when it is zero.
	Publish(ctx context.Context, e Event) error
	// Run delivers events to h until ctx ends, then lets running handlers finish for
	// Options.ShutdownGrace and returns nil; it returns an error only when the store is
	// unusable. One Run at a time per Queue.
	Run(ctx context.Context, h Handler) error
	// Dead lists dead-lettered events in the order they died, oldest first; limit <= 0
	// means all of them.
	Dead(ctx context.Context, limit int) ([]Event, error)
	// Replay moves the dead event with this ID back to the queue with Attempts reset;
	// ErrNotFound when no dead event has that ID.
	Replay(ctx context.Context, id string) error
	// Stats counts the queue's events.
	Stats(ctx context.Context) (Stats, error)
	// Close stops a running Run, waits for it and releases the store. It does not close a
	// Redis client it was given.
	Close() error
}

// Stats is a snapshot of a queue. Counts are for the whole queue (all instances sharing
// a Redis stream), not for one process.
type Stats struct {
	// Pending events are stored and not yet delivered.
	Pending int64 `json:"pending"`
	// Retrying events failed (or wait behind a failed event of the same ordering key) and
	// are scheduled for a later attempt.
	Retrying int64 `json:"retrying"`
	// InFlight events are delivered and not yet acknowledged; in Redis this includes
	// events held by a consumer that died and are waiting to be claimed.
	InFlight int64 `json:"in_flight"`
	// Dead events are in the dead-letter list.
	Dead int64 `json:"dead"`
	// Processed counts acknowledged events since the store was created.
	Processed int64 `json:"processed"`
	// Failures counts failed handler calls since the store was created.
	Failures int64 `json:"failures"`
	// OldestAt is when the oldest event still waiting (pending or in flight) was stored;
	// zero when none waits. On disk, events stored before crmlink started count from the
	// start; on Redis a retrying event counts from its latest attempt.
	OldestAt time.Time `json:"oldest_at,omitzero"`
}

var (
	// ErrNotFound is returned by Replay for an ID that is not in the dead-letter list.
	ErrNotFound = errors.New("queue: no dead event with that id")
	// ErrClosed is returned by a Queue after Close.
	ErrClosed = errors.New("queue: closed")
	// ErrRunning is returned by Run while another Run of the same Queue is active.
	ErrRunning = errors.New("queue: Run is already active on this queue")
)

// deadAtOnce reports whether err is one no retry can fix (events.Classify says
// DeadLetter): the event goes to the dead-letter list without waiting for the horizon.
func deadAtOnce(err error) bool { return events.Classify(err) == events.DeadLetter }

// maxEventSize bounds one stored event; larger payloads belong in the CRM or a blob store,
// not in the queue.
const maxEventSize = 4 << 20

// prepare validates e for Publish and fills the fields the queue owns.
func prepare(e Event, now time.Time) (Event, []byte, error) {
	if e.ID == "" {
		return e, nil, errors.New("queue: event has no ID; set the producer's idempotency key (e.g. the Asterisk linkedid)")
	}
	if e.Kind == "" {
		return e, nil, fmt.Errorf("queue: event %q has no Kind; set e.g. \"call_outcome\"", e.ID)
	}
	e.Attempts = 0
	e.LastError = ""
	e.FailingSince = time.Time{}
	if e.FirstSeen.IsZero() {
		e.FirstSeen = now.UTC()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return e, nil, fmt.Errorf("queue: event %q: payload is not valid JSON: %w", e.ID, err)
	}
	if len(b) > maxEventSize {
		return e, nil, fmt.Errorf("queue: event %q is %d bytes; the limit is %d", e.ID, len(b), maxEventSize)
	}
	return e, b, nil
}
