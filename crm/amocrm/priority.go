package amocrm

import "context"

// Priority orders requests that wait for the shared rate budget.
type Priority int

const (
	// PriorityBackground is for event-path work (sync, writes); it is the default.
	PriorityBackground Priority = iota
	// PriorityCall is for lookups made while a call is being set up; they go first.
	PriorityCall
	// PriorityCard is for the incoming-call card (a call event while a phone rings): after
	// the call path's lookups, before background work. It never takes the slots kept for
	// calls (amocrm.call_reserve), and is worthless late, so it carries a deadline.
	PriorityCard
)

func (p Priority) String() string {
	switch p {
	case PriorityCall:
		return "call"
	case PriorityCard:
		return "card"
	}
	return "background"
}

type priorityKey struct{}

// WithPriority marks every request made with ctx as p.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityOf reports the priority ctx carries; PriorityBackground when unmarked.
func PriorityOf(ctx context.Context) Priority {
	p, _ := ctx.Value(priorityKey{}).(Priority)
	return p
}
