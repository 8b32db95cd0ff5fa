package routing

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Cold lookups for inquiries (decisions asked outside a call, Call.Inquiry) start at most
// inquiryBurst at once and then one per inquiryEvery: a person checking a few numbers gets
// answers at once, a script walking a number list gets one new number a second, about two
// of the account's 7 amoCRM requests a second, leaving the rest to calls and CRM writes.
const (
	inquiryEvery = time.Second
	inquiryBurst = 3
)

// inquiryPacer spaces cold inquiry lookups (a virtual-schedule token bucket: each lookup
// takes the next slot, at most burst slots ahead of now).
type inquiryPacer struct {
	every time.Duration
	burst int

	mu   sync.Mutex
	next time.Time // the slot the next lookup gets, or earlier: then now
}

func newInquiryPacer() *inquiryPacer { return &inquiryPacer{every: inquiryEvery, burst: inquiryBurst} }

// wait takes the next slot and waits for it, or fails at once when the slot is past ctx's
// deadline: the asker learns now that the budget for inquiries is spent.
func (p *inquiryPacer) wait(ctx context.Context) error {
	p.mu.Lock()
	now := time.Now()
	slot := now.Add(-time.Duration(p.burst-1) * p.every)
	if p.next.After(slot) {
		slot = p.next
	}
	d := slot.Sub(now)
	if dl, ok := ctx.Deadline(); ok && d > 0 && time.Until(dl) < d {
		p.mu.Unlock()
		return fmt.Errorf("cold lookups outside calls are limited to %d at once and one per %s; the next is in %s", p.burst, p.every, d.Round(time.Millisecond))
	}
	p.next = slot.Add(p.every)
	p.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
