package crm

import (
	"context"
	"sync/atomic"
)

// SearchTally is how many cards a free-text contact search returned before the directory
// kept those whose phone field holds the number: amoCRM's query also matches names, notes
// and other fields, and an administrator asking why a call was not routed needs both counts.
type SearchTally struct {
	returned atomic.Int64
	noted    atomic.Bool
}

type searchTallyKey struct{}

// WithSearchTally returns a context in which FindContactsByPhone notes the search's count.
func WithSearchTally(ctx context.Context) (context.Context, *SearchTally) {
	t := &SearchTally{}
	return context.WithValue(ctx, searchTallyKey{}, t), t
}

// NoteSearchReturned records n cards returned by a search, when the caller asked for it.
func NoteSearchReturned(ctx context.Context, n int) {
	if t, ok := ctx.Value(searchTallyKey{}).(*SearchTally); ok {
		t.returned.Add(int64(n))
		t.noted.Store(true)
	}
}

// Returned is the count noted; ok is false when the directory noted none (it does not
// search free text, so what it returned is what it found).
func (t *SearchTally) Returned() (n int, ok bool) {
	return int(t.returned.Load()), t.noted.Load()
}
