package chatbridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
)

// Both guard stores behave the same: marks hold until their deadline on the caller's
// clock, clocks only move forward.
func TestGuardStores(t *testing.T) {
	stores := map[string]func(t *testing.T, clk *testClock) chatbridge.GuardStore{
		"memory": func(_ *testing.T, clk *testClock) chatbridge.GuardStore { return chatbridge.NewMemoryGuard(clk.Now) },
		"redis": func(t *testing.T, clk *testClock) chatbridge.GuardStore {
			return chatbridge.NewRedisGuard(redisClient(t), "test:chat:", clk.Now)
		},
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			t.Run("marks", func(t *testing.T) {
				clk := &testClock{now: t0}
				g := newStore(t, clk)
				_, ok, err := g.Marked(ctx, "crm:lead:1", t0)
				require.NoError(t, err)
				assert.False(t, ok)

				require.NoError(t, g.Mark(ctx, "crm:lead:1", "12", t0.Add(5*time.Second)))
				v, ok, err := g.Marked(ctx, "crm:lead:1", t0.Add(4999*time.Millisecond))
				require.NoError(t, err)
				assert.True(t, ok)
				assert.Equal(t, "12", v)
				_, ok, err = g.Marked(ctx, "crm:lead:1", t0.Add(5*time.Second))
				require.NoError(t, err)
				assert.False(t, ok, "a mark ends at its deadline")

				require.NoError(t, g.Mark(ctx, "chat:chatapp:1/wa/7916", "a|b", t0.Add(time.Minute)))
				v, _, err = g.Marked(ctx, "chat:chatapp:1/wa/7916", t0)
				require.NoError(t, err)
				assert.Equal(t, "a|b", v, "values may hold the separator")
				require.NoError(t, g.Unmark(ctx, "chat:chatapp:1/wa/7916"))
				_, ok, err = g.Marked(ctx, "chat:chatapp:1/wa/7916", t0)
				require.NoError(t, err)
				assert.False(t, ok)
				require.NoError(t, g.Unmark(ctx, "never-marked"))
			})
			t.Run("clocks", func(t *testing.T) {
				clk := &testClock{now: t0}
				g := newStore(t, clk)
				_, ok, err := g.Latest(ctx, "client:1")
				require.NoError(t, err)
				assert.False(t, ok)

				steps := []struct {
					at   time.Duration
					want bool
				}{{10, true}, {10, true}, {5, false}, {20, true}, {19, false}}
				for _, s := range steps {
					ok, err := g.Advance(ctx, "client:1", t0.Add(s.at*time.Second), time.Hour)
					require.NoError(t, err)
					assert.Equal(t, s.want, ok, "advance to +%ds", s.at)
				}
				at, ok, err := g.Latest(ctx, "client:1")
				require.NoError(t, err)
				assert.True(t, ok)
				assert.True(t, at.Equal(t0.Add(20*time.Second)), "%s", at)

				prev, err := g.Swap(ctx, "dialog:x", t0, time.Hour)
				require.NoError(t, err)
				assert.True(t, prev.IsZero())
				prev, err = g.Swap(ctx, "dialog:x", t0.Add(-time.Minute), time.Hour)
				require.NoError(t, err)
				assert.True(t, prev.Equal(t0), "swap returns the previous value, %s", prev)
				at, _, err = g.Latest(ctx, "dialog:x")
				require.NoError(t, err)
				assert.True(t, at.Equal(t0.Add(-time.Minute)), "swap sets even an earlier time")
			})
		})
	}
}

// The memory store forgets clocks after their keep time, on its own clock.
func TestMemoryGuardExpiresClocks(t *testing.T) {
	clk := &testClock{now: t0}
	g := chatbridge.NewMemoryGuard(clk.Now)
	ctx := context.Background()
	_, err := g.Advance(ctx, "client:1", t0.Add(time.Hour), time.Minute)
	require.NoError(t, err)
	clk.Advance(time.Minute)
	_, ok, err := g.Latest(ctx, "client:1")
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = g.Advance(ctx, "client:1", t0, time.Minute)
	require.NoError(t, err)
	assert.True(t, ok, "an expired clock holds nothing back")
}

// A Redis key that is not the guard's format is an error, not a silent pass.
func TestRedisGuardCorruptValues(t *testing.T) {
	rdb := redisClient(t)
	g := chatbridge.NewRedisGuard(rdb, "", nil)
	ctx := context.Background()
	require.NoError(t, rdb.Set(ctx, chatbridge.DefaultRedisPrefix+"mark:x", "garbage", time.Minute).Err())
	_, _, err := g.Marked(ctx, "x", time.Now())
	assert.ErrorContains(t, err, "not <deadline ms>|<value>")
	require.NoError(t, rdb.Set(ctx, chatbridge.DefaultRedisPrefix+"clock:y", "soon", time.Minute).Err())
	_, _, err = g.Latest(ctx, "y")
	assert.ErrorContains(t, err, "not Unix milliseconds")
	ttl, err := rdb.PTTL(ctx, chatbridge.DefaultRedisPrefix+"mark:z").Result()
	require.NoError(t, err)
	assert.Negative(t, ttl)
	require.NoError(t, g.Mark(ctx, "z", "1", time.Now().Add(5*time.Second)))
	ttl, err = rdb.PTTL(ctx, chatbridge.DefaultRedisPrefix+"mark:z").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 5*time.Second, "the key outlives the deadline a little")
	assert.LessOrEqual(t, ttl, 7*time.Second)
}
