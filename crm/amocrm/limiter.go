package amocrm

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// limiter spends one account's request budget: at most n requests in any window of the
// given length. amoCRM counts its 7 requests per second over a sliding second, so an idle
// account serves n requests at once, back to back; a token bucket would space them out and
// charge a cold owner lookup a wait of its own on the caller's post-dial delay.
//
// It has three priority classes. A call-path request reserves the next free slot at once,
// even one in the future; a card request (the incoming-call card) and a background request
// only take a slot that is free now and otherwise wait and look again, background work
// standing back while a card waits. Background work never takes the calls' reserve; a card
// may take one slot of it, so that background work saturating its share never holds a
// card back for a whole window, while calls keep the rest of their reserve. A reserved slot is gone
// for everyone else, so a waiting call is always served before waiting cards and background
// work, a waiting card before background work, and neither queues ahead of a call that
// arrives later.
type limiter struct {
	n      int
	window time.Duration
	// reserve slots of every window are the call path's alone: background work takes at
	// most n-reserve, so a cold owner lookup finds free slots even while the event path
	// is busy and never waits behind it.
	reserve int

	mu sync.Mutex
	// grants are the slot times handed out, ascending; reservations of waiting calls may lie
	// in the future. Every window of length window holds at most n of them, which with an
	// ascending list is grants[i] - grants[i-n] >= window. Grants older than one window are
	// dropped: no new slot can share a window with them.
	grants []time.Time

	// cardsWaiting counts the card requests waiting for a free slot: background work leaves
	// free slots to them.
	cardsWaiting int

	// onWait, when set (tests), is called once by each request that has to wait.
	onWait func(Priority)
}

// newLimiter allows n requests in any window of length window.
func newLimiter(n int, window time.Duration) *limiter {
	n = max(n, 1)
	return &limiter{n: n, window: window, grants: make([]time.Time, 0, min(n, 64)+1)}
}

// reserveForCalls keeps r slots of every window for the call path (at most n-1, so
// background work always keeps one).
func (l *limiter) reserveForCalls(r int) *limiter {
	l.reserve = min(max(r, 0), l.n-1)
	return l
}

// rateWindow turns a budget in requests per second into whole requests per window, the way
// amoCRM counts them: floor(rate) per second, or one per 1/rate seconds below one per
// second. margin widens the window so that network jitter between our slot and the arrival
// at the server never puts n+1 requests into the server's own second.
func rateWindow(perSecond float64, margin time.Duration) (int, time.Duration) {
	if perSecond >= 1 {
		return int(math.Min(math.Floor(perSecond), math.MaxInt32)), time.Second + margin
	}
	return 1, time.Duration(float64(time.Second)/perSecond) + margin
}

func (l *limiter) wait(ctx context.Context, p Priority) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p == PriorityCall {
		return l.waitCall(ctx)
	}
	return l.waitFree(ctx, p)
}

// waitCall takes the next slot at once, even a future one, and waits for it; it fails at
// once when that slot is past ctx's deadline.
func (l *limiter) waitCall(ctx context.Context) error {
	l.mu.Lock()
	now := time.Now()
	slot := l.nextWithin(now, l.n)
	d := slot.Sub(now)
	if d <= 0 {
		l.grants = append(l.grants, now)
		l.mu.Unlock()
		return nil
	}
	if err := fitsDeadline(ctx, d); err != nil {
		l.mu.Unlock()
		return err
	}
	l.grants = append(l.grants, slot)
	l.mu.Unlock()

	l.waiting(PriorityCall)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		l.release(slot)
		return ctx.Err()
	}
}

// waitFree takes a slot that is free now among those the calls do not keep, looking again
// until one is; background work also stands back while a card waits.
func (l *limiter) waitFree(ctx context.Context, p Priority) error {
	card := p == PriorityCard
	announced, counted := false, false
	defer func() {
		if counted {
			l.mu.Lock()
			l.cardsWaiting--
			l.mu.Unlock()
		}
	}()
	for {
		l.mu.Lock()
		now := time.Now()
		slot := l.nextWithin(now, l.limitOf(p))
		if !slot.After(now) && (card || l.cardsWaiting == 0) {
			l.grants = append(l.grants, now)
			l.mu.Unlock()
			return nil
		}
		if card && !counted {
			l.cardsWaiting++
			counted = true
		}
		l.mu.Unlock()
		// A call may take this slot meanwhile; then the next look finds a later one.
		d := max(slot.Sub(now), time.Millisecond)
		if !slot.After(now) {
			d = standBack // background work leaves a free slot to a waiting card
		}
		if err := fitsDeadline(ctx, d); err != nil {
			return err
		}
		if !announced {
			l.waiting(p)
			announced = true
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// limitOf is how many grants of any window a class that waits for free slots may hold.
func (l *limiter) limitOf(p Priority) int {
	if p == PriorityCard && l.reserve > 0 {
		return l.n - l.reserve + 1
	}
	return l.n - l.reserve
}

// standBack is how long background work waits before looking again when it left a free
// slot to a waiting card.
const standBack = 5 * time.Millisecond

// nextWithin is the earliest slot at or after now that keeps every window within limit
// grants (n for calls, n-reserve for the other classes). Slots never go before the last
// one handed out, which keeps grants ascending; a future last slot means the window is
// full until then anyway. Callers hold mu.
func (l *limiter) nextWithin(now time.Time, limit int) time.Time {
	l.prune(now)
	slot := now
	if k := len(l.grants); k > 0 {
		if last := l.grants[k-1]; last.After(slot) {
			slot = last
		}
		if k >= limit {
			if free := l.grants[k-limit].Add(l.window); free.After(slot) {
				slot = free
			}
		}
	}
	return slot
}

// prune drops the grants no window starting now can hold. Callers hold mu.
func (l *limiter) prune(now time.Time) {
	cut := now.Add(-l.window)
	i := 0
	for i < len(l.grants) && !l.grants[i].After(cut) {
		i++
	}
	if i > 0 {
		l.grants = slices.Delete(l.grants, 0, i)
	}
}

// take hands out a slot without waiting, for a caller that orders it with work of its
// own (the shared budget's fallback): a call reserves the next free slot, even a future
// one, unless it lies further than maxWait ahead (negative: no bound); another class takes
// a slot only if one is free now. When nothing is taken it says how long to wait before
// looking again. Cards do not make background work stand back here.
func (l *limiter) take(now time.Time, p Priority, maxWait time.Duration) (slot time.Time, taken bool, again time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p == PriorityCall {
		slot = l.nextWithin(now, l.n)
		if d := slot.Sub(now); maxWait >= 0 && d > maxWait {
			return slot, false, d
		}
		l.grants = append(l.grants, slot)
		return slot, true, 0
	}
	slot = l.nextWithin(now, l.limitOf(p))
	if slot.After(now) {
		return slot, false, max(slot.Sub(now), time.Millisecond)
	}
	l.grants = append(l.grants, now)
	return now, true, 0
}

// record counts a slot handed out elsewhere (the shared budget in Redis) in this limiter's
// windows, so that it still counts when this limiter serves on its own.
func (l *limiter) record(slot time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(time.Now())
	i, _ := slices.BinarySearchFunc(l.grants, slot, func(a, b time.Time) int { return a.Compare(b) })
	l.grants = slices.Insert(l.grants, i, slot)
}

// release gives back the slot of a call that stopped waiting. Removing a grant keeps the
// list ascending and every window within n, and lets the next request have the capacity.
func (l *limiter) release(slot time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.grants) - 1; i >= 0; i-- {
		if l.grants[i].Equal(slot) {
			l.grants = slices.Delete(l.grants, i, i+1)
			return
		}
	}
}

func (l *limiter) waiting(p Priority) {
	if l.onWait != nil {
		l.onWait(p)
	}
}

// fitsDeadline fails early when waiting d would outlive the context: the caller learns now,
// not at the deadline, that the budget is spent.
func fitsDeadline(ctx context.Context, d time.Duration) error {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return fmt.Errorf("rate limit: next slot in %v is past the deadline: %w", d.Round(time.Millisecond), context.DeadlineExceeded)
	}
	return nil
}
