package intake

import (
	"context"
	"sync"

	"github.com/crmlink/crmlink/crm"
)

// Rotation keeps each group's round-robin turn: whom the group's last new client went to.
// Shared by every crmlink instance when it lives in Redis.
type Rotation interface {
	// Next returns the first available member after the one Next returned last for the
	// group, in members' order (from the start the first time), and remembers it; 0 when
	// no member is available. available[i] says whether members[i] may take a client now.
	Next(ctx context.Context, group string, members []crm.UserID, available []bool) (crm.UserID, error)
}

// nextAfter is the turn rule both Rotations follow.
func nextAfter(members []crm.UserID, available []bool, last crm.UserID) crm.UserID {
	start := 0
	for i, m := range members {
		if m == last {
			start = i + 1
			break
		}
	}
	for k := range members {
		i := (start + k) % len(members)
		if available[i] {
			return members[i]
		}
	}
	return 0
}

// MemoryRotation is the Rotation of a single instance.
type MemoryRotation struct {
	mu   sync.Mutex
	last map[string]crm.UserID
}

// NewMemoryRotation returns a Rotation in process memory.
func NewMemoryRotation() *MemoryRotation { return &MemoryRotation{last: map[string]crm.UserID{}} }

// Next implements Rotation.
func (r *MemoryRotation) Next(_ context.Context, group string, members []crm.UserID, available []bool) (crm.UserID, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := nextAfter(members, available, r.last[group])
	if u != 0 {
		r.last[group] = u
	}
	return u, nil
}

var _ Rotation = (*MemoryRotation)(nil)
