package amocrm

import "context"

// Priority orders requests that wait for the shared rate budget.
type Priority int

const (
	// PriorityBackground is for event-path work (sync, writes); it is the default.
	PriorityBackground Priority = iota
	// PriorityCall is for lookups made while a call is being set up; they go first.
	PriorityCall
)

func (p Priority) String() string {
	if p == PriorityCall {
		return "call"
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
