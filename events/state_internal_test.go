package events

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMemoryStateExpiry: entries expire on the state's clock and are swept as writes come.
func TestMemoryStateExpiry(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	s := NewMemoryState()
	s.now = func() time.Time { return now }

	require.NoError(t, s.Save(ctx, "a", []byte("1"), time.Minute))
	_, err := s.ClaimTask(ctx, "+79161234567", "call:1:task", now, now.Add(time.Hour), time.Minute)
	require.NoError(t, err)
	now = now.Add(time.Minute)
	done, err := s.Done(ctx, "a")
	require.NoError(t, err)
	assert.False(t, done)
	until, err := s.TaskUntil(ctx, "+79161234567")
	require.NoError(t, err)
	assert.True(t, until.IsZero())

	for i := range sweepEvery {
		require.NoError(t, s.MarkDone(ctx, "k"+string(rune('a'+i%26)), time.Hour))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	assert.NotContains(t, s.keys, "a")
	assert.Empty(t, s.tasks)
}
