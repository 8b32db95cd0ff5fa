package queue

import (
	"context"
	"errors"
	"fmt"
)

// ReplayAll replays every event in the dead-letter list as it is when called, oldest
// first, and returns how many went back to the queue. An event that dies again meanwhile
// is not replayed a second time; one replayed or removed by someone else is skipped. It
// stops at the first store error, with the events before it replayed.
func ReplayAll(ctx context.Context, q Queue) (int, error) {
	dead, err := q.Dead(ctx, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range dead {
		err := q.Replay(ctx, e.ID)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return n, fmt.Errorf("queue: replay all: %d of %d replayed: %w", n, len(dead), err)
		default:
			n++
		}
	}
	return n, nil
}
