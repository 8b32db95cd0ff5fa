package amocrm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// limiter spends one account's request budget with two priority classes. A call-path request
// reserves the next free slot at once, even one in the future; a background request only
// takes a slot that is free now and otherwise waits and looks again. A reserved slot is gone
// for everyone else, so a waiting call is always served before waiting background work, and
// background work never queues ahead of a call that arrives later.
type limiter struct {
	rl *rate.Limiter
	// onWait, when set (tests), is called once by each request that has to wait.
	onWait func(Priority)
}

func newLimiter(r rate.Limit, burst int) *limiter {
	return &limiter{rl: rate.NewLimiter(r, burst)}
}

func (l *limiter) wait(ctx context.Context, p Priority) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p == PriorityCall {
		return l.waitCall(ctx)
	}
	return l.waitBackground(ctx)
}

func (l *limiter) waitCall(ctx context.Context) error {
	r := l.rl.Reserve()
	if !r.OK() {
		return errors.New("rate limiter: burst is zero")
	}
	d := r.Delay()
	if d == 0 {
		return nil
	}
	if err := fitsDeadline(ctx, d); err != nil {
		r.Cancel()
		return err
	}
	l.waiting(PriorityCall)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

func (l *limiter) waitBackground(ctx context.Context) error {
	announced := false
	for {
		now := time.Now()
		if l.rl.AllowN(now, 1) {
			return nil
		}
		// Time until one whole token is back, counting slots reserved by calls.
		d := time.Duration((1 - l.rl.TokensAt(now)) / float64(l.rl.Limit()) * float64(time.Second))
		d = max(d, time.Millisecond)
		if err := fitsDeadline(ctx, d); err != nil {
			return err
		}
		if !announced {
			l.waiting(PriorityBackground)
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
