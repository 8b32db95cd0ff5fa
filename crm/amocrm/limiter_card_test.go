package amocrm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLimiterCardPriority: with background work saturating the budget, a call-path lookup
// goes first, a card next, background work after; a card whose slot would come after its
// deadline fails at once instead of being sent late.
func TestLimiterCardPriority(t *testing.T) {
	l := newLimiter(7, 300*time.Millisecond).reserveForCalls(2)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var mu sync.Mutex
	var order []Priority
	got := func(p Priority) {
		mu.Lock()
		order = append(order, p)
		mu.Unlock()
	}
	// Saturate: five background workers take every slot they may, for as long as the test.
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l.wait(ctx, PriorityBackground) == nil {
				got(PriorityBackground)
			}
		}()
	}
	time.Sleep(400 * time.Millisecond) // background owns the window by now
	mu.Lock()
	order = nil
	mu.Unlock()

	// A card is not held back a whole window by background work: it may take one slot of
	// the calls' reserve.
	cardCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	begin := time.Now()
	require.NoError(t, l.wait(cardCtx, PriorityCard))
	got(PriorityCard)
	assert.Less(t, time.Since(begin), 50*time.Millisecond, "the first card goes at once")

	// A second card waits; a call arriving after it still goes first, and the card before
	// any background work.
	done := make(chan error, 2)
	go func() {
		err := l.wait(cardCtx, PriorityCard)
		if err == nil {
			got(PriorityCard)
		}
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // the card waits first
	go func() {
		err := l.wait(context.Background(), PriorityCall)
		if err == nil {
			got(PriorityCall)
		}
		done <- err
	}()
	require.NoError(t, <-done)
	require.NoError(t, <-done)
	mu.Lock()
	first := order[:min(len(order), 3)]
	mu.Unlock()
	assert.Equal(t, []Priority{PriorityCard, PriorityCall, PriorityCard}, first, "calls first, cards next, background work last")

	// A card whose deadline is nearer than the next free slot is refused at once.
	short, cancelShort := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancelShort()
	time.Sleep(20 * time.Millisecond) // background has the window full again
	begin = time.Now()
	err := l.wait(short, PriorityCard)
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded))
	assert.Less(t, time.Since(begin), 50*time.Millisecond, "refused at once, not at the deadline")
	stop()
	wg.Wait()
	l.mu.Lock()
	assert.Zero(t, l.cardsWaiting, "no card left counted as waiting")
	l.mu.Unlock()
}
