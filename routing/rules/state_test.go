package rules_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/routing/rules"
)

var stateImpls = []struct {
	name string
	new  func(t *testing.T) rules.State
}{
	{"memory", func(*testing.T) rules.State { return rules.NewMemoryState() }},
	{"redis", func(t *testing.T) rules.State { return rules.NewRedisState(testrig.Redis(t), "") }},
	{"file", func(t *testing.T) rules.State {
		s, err := rules.OpenFileState(filepath.Join(t.TempDir(), "rules-state.jsonl"))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}},
}

// TestState is the contract every State keeps.
func TestState(t *testing.T) {
	ctx := context.Background()
	for _, impl := range stateImpls {
		t.Run(impl.name, func(t *testing.T) {
			s := impl.new(t)

			done, err := s.Done(ctx, "call:x:note")
			require.NoError(t, err)
			assert.False(t, done)
			require.NoError(t, s.MarkDone(ctx, "call:x:note", time.Hour))
			done, err = s.Done(ctx, "call:x:note")
			require.NoError(t, err)
			assert.True(t, done)
			v, ok, err := s.Load(ctx, "call:x:note")
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Empty(t, v, "a key only marked done has no value")

			_, ok, err = s.Load(ctx, "call:x:contact")
			require.NoError(t, err)
			assert.False(t, ok)
			require.NoError(t, s.Save(ctx, "call:x:contact", []byte("1001"), time.Hour))
			v, ok, err = s.Load(ctx, "call:x:contact")
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, []byte("1001"), v)
			done, err = s.Done(ctx, "call:x:contact")
			require.NoError(t, err)
			assert.True(t, done, "a saved key is done")

			until, err := s.TaskUntil(ctx, client)
			require.NoError(t, err)
			assert.True(t, until.IsZero())
			require.NoError(t, s.ExtendTaskUntil(ctx, client, t0.Add(time.Hour), 2*time.Hour))
			require.NoError(t, s.ExtendTaskUntil(ctx, client, t0.Add(30*time.Minute), 2*time.Hour))
			until, err = s.TaskUntil(ctx, client)
			require.NoError(t, err)
			assert.True(t, until.Equal(t0.Add(time.Hour)), "an earlier deadline does not replace a later one: %s", until)
			require.NoError(t, s.ExtendTaskUntil(ctx, client, t0.Add(2*time.Hour), 3*time.Hour))
			until, err = s.TaskUntil(ctx, client)
			require.NoError(t, err)
			assert.True(t, until.Equal(t0.Add(2*time.Hour)), "%s", until)
			other, err := s.TaskUntil(ctx, crm.Phone("+74950000000"))
			require.NoError(t, err)
			assert.True(t, other.IsZero())
		})
	}
}

// TestRedisStateExpiry: keys go away after their ttl, so Redis does not fill up.
func TestRedisStateExpiry(t *testing.T) {
	ctx := context.Background()
	rdb := testrig.Redis(t)
	s := rules.NewRedisState(rdb, "test:")
	require.NoError(t, s.MarkDone(ctx, "k", 50*time.Millisecond))
	require.NoError(t, s.ExtendTaskUntil(ctx, client, t0, 50*time.Millisecond))
	keys, err := rdb.Keys(ctx, "test:*").Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"test:k", "test:task:+79161234567"}, keys)
	time.Sleep(120 * time.Millisecond)
	done, err := s.Done(ctx, "k")
	require.NoError(t, err)
	assert.False(t, done)
	until, err := s.TaskUntil(ctx, client)
	require.NoError(t, err)
	assert.True(t, until.IsZero())
}

// TestSharedStateAcrossInstances: two crmlink instances on one Redis keep one task window
// per client, even when the CRM does not list the first instance's task yet.
func TestSharedStateAcrossInstances(t *testing.T) {
	e := newEnvState(t, rules.Defaults(), rules.NewRedisState(testrig.Redis(t), ""))
	other := e.engine(t, rules.Defaults(), e.crm, laggingCRM{e.crm})

	e.handle(t, incoming("s1", false))
	e.clock.Advance(5 * time.Minute)
	_, err := other.HandleCall(context.Background(), at(incoming("s2", false), e.clock.Now()))
	require.NoError(t, err)
	assert.Len(t, e.crm.Created().Tasks, 1)
	assert.Len(t, e.crm.Created().Notes, 2)
}

// What a FileState records survives reopening; expired entries are dropped.
func TestFileStateSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rules-state.jsonl")
	s, err := rules.OpenFileState(path)
	require.NoError(t, err)
	require.NoError(t, s.Save(ctx, "call:1:contact", []byte("1001"), time.Hour))
	require.NoError(t, s.MarkDone(ctx, "call:1:note", time.Hour))
	require.NoError(t, s.Save(ctx, "call:0:gone", []byte("x"), time.Nanosecond))
	until := time.Now().Add(time.Hour).Truncate(time.Second)
	require.NoError(t, s.ExtendTaskUntil(ctx, "+74951234567", until, time.Hour))
	require.NoError(t, s.Close())

	s, err = rules.OpenFileState(path)
	require.NoError(t, err)
	defer s.Close()
	v, ok, err := s.Load(ctx, "call:1:contact")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, []byte("1001"), v)
	done, _ := s.Done(ctx, "call:1:note")
	assert.True(t, done)
	done, _ = s.Done(ctx, "call:0:gone")
	assert.False(t, done, "expired entries are not kept")
	got, err := s.TaskUntil(ctx, "+74951234567")
	require.NoError(t, err)
	assert.True(t, until.Equal(got))
}
