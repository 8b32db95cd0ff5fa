package chatbridge

import (
	"context"
	"sync"
	"time"
)

// GuardStore is what the anti ping-pong guard remembers, shared by every crmlink instance
// when it lives in Redis:
//
//   - marks: "crmlink is writing value to target" (a CRM entity or a chat), held until a
//     deadline, so the webhook the write causes is recognised as an echo;
//   - clocks: the time of the latest change applied per key (a client, an entity, a
//     chat), so a late or repeated change never overrides a newer one.
//
// Times are the caller's (Sync's clock): deadlines are stored, not left to the store's
// expiry, so tests decide what "now" is. Keys are Sync's; an implementation adds a prefix.
type GuardStore interface {
	// Mark records that value is being written to target; the mark holds until until.
	Mark(ctx context.Context, target, value string, until time.Time) error
	// Marked returns the value of target's mark when it still holds at now.
	Marked(ctx context.Context, target string, now time.Time) (value string, ok bool, err error)
	// Unmark forgets target's mark.
	Unmark(ctx context.Context, target string) error
	// Advance moves key's clock to at unless it is already later and reports whether at
	// is not older than the clock was (equal counts as not older, so a retried change
	// passes again). The clock is kept for keep.
	Advance(ctx context.Context, key string, at time.Time, keep time.Duration) (bool, error)
	// Swap sets key's clock to at and returns the previous value (zero when none).
	Swap(ctx context.Context, key string, at time.Time, keep time.Duration) (time.Time, error)
	// Latest returns key's clock; ok is false when there is none.
	Latest(ctx context.Context, key string) (time.Time, bool, error)
}

// MemoryGuard is the GuardStore of a single crmlink instance without Redis. Entries expire
// on its clock and are swept as new ones are written.
type MemoryGuard struct {
	mu     sync.Mutex
	now    func() time.Time
	marks  map[string]memMark
	clocks map[string]memClock
	writes int
}

type memMark struct {
	value string
	until time.Time
}

type memClock struct {
	at      time.Time
	expires time.Time
}

// NewMemoryGuard returns an empty in-process guard; now is its clock (nil: time.Now), used
// to expire the clocks it keeps.
func NewMemoryGuard(now func() time.Time) *MemoryGuard {
	if now == nil {
		now = time.Now
	}
	return &MemoryGuard{now: now, marks: map[string]memMark{}, clocks: map[string]memClock{}}
}

// Mark implements GuardStore.
func (g *MemoryGuard) Mark(_ context.Context, target, value string, until time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.marks[target] = memMark{value: value, until: until}
	g.sweep()
	return nil
}

// Marked implements GuardStore.
func (g *MemoryGuard) Marked(_ context.Context, target string, now time.Time) (string, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.marks[target]
	if !ok || !now.Before(m.until) {
		return "", false, nil
	}
	return m.value, true, nil
}

// Unmark implements GuardStore.
func (g *MemoryGuard) Unmark(_ context.Context, target string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.marks, target)
	return nil
}

// Advance implements GuardStore.
func (g *MemoryGuard) Advance(_ context.Context, key string, at time.Time, keep time.Duration) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.clock(key); ok && at.Before(c) {
		return false, nil
	}
	g.clocks[key] = memClock{at: at, expires: g.now().Add(keep)}
	g.sweep()
	return true, nil
}

// Swap implements GuardStore.
func (g *MemoryGuard) Swap(_ context.Context, key string, at time.Time, keep time.Duration) (time.Time, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	prev, _ := g.clock(key)
	g.clocks[key] = memClock{at: at, expires: g.now().Add(keep)}
	g.sweep()
	return prev, nil
}

// Latest implements GuardStore.
func (g *MemoryGuard) Latest(_ context.Context, key string) (time.Time, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.clock(key)
	return at, ok, nil
}

// clock reads a clock that has not expired; the caller holds mu.
func (g *MemoryGuard) clock(key string) (time.Time, bool) {
	c, ok := g.clocks[key]
	if !ok || !g.now().Before(c.expires) {
		return time.Time{}, false
	}
	return c.at, true
}

// sweepEvery bounds the memory held by expired entries without a timer goroutine.
const sweepEvery = 1024

// sweep drops expired entries every sweepEvery writes; the caller holds mu.
func (g *MemoryGuard) sweep() {
	g.writes++
	if g.writes%sweepEvery != 0 {
		return
	}
	now := g.now()
	for k, m := range g.marks {
		if !now.Before(m.until) {
			delete(g.marks, k)
		}
	}
	for k, c := range g.clocks {
		if !now.Before(c.expires) {
			delete(g.clocks, k)
		}
	}
}

var _ GuardStore = (*MemoryGuard)(nil)
