package events

import (
	"context"
	"sync"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// State is what the event path remembers between attempts and between events: an event's
// plan and which of its steps completed (and the ids they created), kept by Steps for the
// call scenarios and the chat intake, and until when a client already has a call-back task
// (the call scenarios' missed-call rule). Keys are the executor's (Steps.Key); an
// implementation adds its own prefix. Shared by every crmlink instance when it lives in Redis.
type State interface {
	// Done reports whether key was marked done or saved and has not expired.
	Done(ctx context.Context, key string) (bool, error)
	// MarkDone records that the action under key completed.
	MarkDone(ctx context.Context, key string, ttl time.Duration) error
	// Save stores a value under key (an outcome's plan, the id an action created); a saved
	// key is also done.
	Save(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Load returns what Save stored (empty for a key only marked done); ok is false for an
	// unknown or expired key.
	Load(ctx context.Context, key string) (value []byte, ok bool, err error)
	// TaskUntil returns the deadline of the last call-back task the engine created for the
	// client's number; zero when there is none on record.
	TaskUntil(ctx context.Context, phone crm.Phone) (time.Time, error)
	// ClaimTask records until as the deadline of the call-back task claimant (the
	// engine's action key) is about to create for the number, unless another claimant's
	// deadline after now is on record: then that deadline is returned and nothing
	// changes. The check and the record are one step for every instance sharing the
	// State, so two outcomes for one client never both create a task. The record is kept
	// for ttl; claiming again as the same claimant (a retried action) succeeds.
	ClaimTask(ctx context.Context, phone crm.Phone, claimant string, now, until time.Time, ttl time.Duration) (held time.Time, err error)
	// ReleaseTask drops claimant's record for the number: its task will not be created.
	ReleaseTask(ctx context.Context, phone crm.Phone, claimant string) error
}

// MemoryState is the State of a single crmlink instance without Redis. Entries expire on
// the real clock; they are swept as new ones are written.
type MemoryState struct {
	mu     sync.Mutex
	now    func() time.Time
	keys   map[string]memEntry
	tasks  map[crm.Phone]memTask
	writes int
}

type memEntry struct {
	value   []byte
	expires time.Time
}

type memTask struct {
	until    time.Time
	expires  time.Time
	claimant string
}

// NewMemoryState returns an empty in-process State.
func NewMemoryState() *MemoryState {
	return &MemoryState{now: time.Now, keys: map[string]memEntry{}, tasks: map[crm.Phone]memTask{}}
}

// sweepEvery bounds the memory held by expired entries without a timer goroutine.
const sweepEvery = 1024

// Done implements State.
func (s *MemoryState) Done(_ context.Context, key string) (bool, error) {
	_, ok, err := s.Load(context.Background(), key)
	return ok, err
}

// MarkDone implements State.
func (s *MemoryState) MarkDone(ctx context.Context, key string, ttl time.Duration) error {
	return s.Save(ctx, key, nil, ttl)
}

// Save implements State.
func (s *MemoryState) Save(_ context.Context, key string, value []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.keys[key] = memEntry{value: append([]byte{}, value...), expires: now.Add(ttl)}
	s.sweep(now)
	return nil
}

// Load implements State.
func (s *MemoryState) Load(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.keys[key]
	if !ok || !s.now().Before(e.expires) {
		return nil, false, nil
	}
	return append([]byte{}, e.value...), true, nil
}

// TaskUntil implements State.
func (s *MemoryState) TaskUntil(_ context.Context, phone crm.Phone) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[phone]
	if !ok || !s.now().Before(t.expires) {
		return time.Time{}, nil
	}
	return t.until, nil
}

// ClaimTask implements State.
func (s *MemoryState) ClaimTask(_ context.Context, phone crm.Phone, claimant string, now, until time.Time, ttl time.Duration) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if held := s.heldBy(phone, claimant, now); !held.IsZero() {
		return held, nil
	}
	s.tasks[phone] = memTask{until: until, expires: s.now().Add(ttl), claimant: claimant}
	s.sweep(s.now())
	return time.Time{}, nil
}

// heldBy returns the deadline of another claimant's live task window after now; the
// caller holds mu.
func (s *MemoryState) heldBy(phone crm.Phone, claimant string, now time.Time) time.Time {
	t, ok := s.tasks[phone]
	if ok && s.now().Before(t.expires) && t.until.After(now) && t.claimant != claimant {
		return t.until
	}
	return time.Time{}
}

// ReleaseTask implements State.
func (s *MemoryState) ReleaseTask(_ context.Context, phone crm.Phone, claimant string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tasks[phone]; ok && t.claimant == claimant {
		delete(s.tasks, phone)
	}
	return nil
}

// sweep drops expired entries every sweepEvery writes; the caller holds mu.
func (s *MemoryState) sweep(now time.Time) {
	s.writes++
	if s.writes%sweepEvery != 0 {
		return
	}
	for k, e := range s.keys {
		if !now.Before(e.expires) {
			delete(s.keys, k)
		}
	}
	for p, t := range s.tasks {
		if !now.Before(t.expires) {
			delete(s.tasks, p)
		}
	}
}

var _ State = (*MemoryState)(nil)
