// Package eventstest has test doubles for the event path's State: a crmlink killed
// between a CRM write and the record of it.
package eventstest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/crmlink/crmlink/events"
)

// ErrKilled is what the killed instance's record of the step returns.
var ErrKilled = errors.New("crmlink was killed (SIGKILL) before recording the step")

// KilledAfter is the State of an instance killed right after one CRM write: the record
// of it never reaches the State, and the attempt stops there with ErrKilled. The record is
// the first Save or MarkDone of a key ending in ":"+Step or, with no Step, the Record-th
// Save or MarkDone (from 1; the event's plan, where one is stored, is the first).
// Everything else goes to State.
type KilledAfter struct {
	events.State
	Step   string
	Record int

	mu      sync.Mutex
	records int
	killed  bool
}

// Save implements events.State.
func (s *KilledAfter) Save(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	s.mu.Lock()
	s.records++
	kill := !s.killed && (s.Step != "" && strings.HasSuffix(key, ":"+s.Step) || s.Step == "" && s.records == s.Record)
	s.killed = s.killed || kill
	s.mu.Unlock()
	if kill {
		return ErrKilled
	}
	return s.State.Save(ctx, key, v, ttl)
}

// MarkDone implements events.State.
func (s *KilledAfter) MarkDone(ctx context.Context, key string, ttl time.Duration) error {
	return s.Save(ctx, key, nil, ttl)
}
