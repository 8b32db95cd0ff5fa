package scenarios_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/scenarios"
)

var stateImpls = []struct {
	name string
	new  func(t *testing.T) events.State
}{
	{"memory", func(*testing.T) events.State { return events.NewMemoryState() }},
	{"redis", func(t *testing.T) events.State { return events.NewRedisState(testrig.Redis(t), "") }},
	{"file", func(t *testing.T) events.State {
		s, err := events.OpenFileState(filepath.Join(t.TempDir(), "rules-state.jsonl"))
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
			// A claim holds the window against other outcomes, not against its own retry.
			held, err := s.ClaimTask(ctx, client, "call:1:task", t0, t0.Add(time.Hour), 2*time.Hour)
			require.NoError(t, err)
			assert.True(t, held.IsZero(), "the first claim is granted")
			held, err = s.ClaimTask(ctx, client, "call:2:task", t0.Add(time.Minute), t0.Add(61*time.Minute), 2*time.Hour)
			require.NoError(t, err)
			assert.True(t, held.Equal(t0.Add(time.Hour)), "a second outcome sees the first one's deadline: %s", held)
			held, err = s.ClaimTask(ctx, client, "call:1:task", t0.Add(time.Minute), t0.Add(time.Hour), 2*time.Hour)
			require.NoError(t, err)
			assert.True(t, held.IsZero(), "the same action claims again on its retry")
			until, err = s.TaskUntil(ctx, client)
			require.NoError(t, err)
			assert.True(t, until.Equal(t0.Add(time.Hour)), "%s", until)
			// Past the deadline the window is free again.
			held, err = s.ClaimTask(ctx, client, "call:3:task", t0.Add(time.Hour), t0.Add(2*time.Hour), 3*time.Hour)
			require.NoError(t, err)
			assert.True(t, held.IsZero())
			until, err = s.TaskUntil(ctx, client)
			require.NoError(t, err)
			assert.True(t, until.Equal(t0.Add(2*time.Hour)), "%s", until)
			// Released by someone else: kept; by its claimant: gone.
			require.NoError(t, s.ReleaseTask(ctx, client, "call:1:task"))
			until, err = s.TaskUntil(ctx, client)
			require.NoError(t, err)
			assert.False(t, until.IsZero(), "only the claimant releases")
			require.NoError(t, s.ReleaseTask(ctx, client, "call:3:task"))
			until, err = s.TaskUntil(ctx, client)
			require.NoError(t, err)
			assert.True(t, until.IsZero(), "released")
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
	s := events.NewRedisState(rdb, "test:")
	require.NoError(t, s.MarkDone(ctx, "k", 50*time.Millisecond))
	_, err := s.ClaimTask(ctx, client, "call:1:task", t0, t0, 50*time.Millisecond)
	require.NoError(t, err)
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
	e := newEnvState(t, scenarios.Defaults(), events.NewRedisState(testrig.Redis(t), ""))
	other := e.engine(t, scenarios.Defaults(), e.crm, laggingCRM{e.crm})

	e.handle(t, incoming("s1", false))
	e.clock.Advance(5 * time.Minute)
	_, err := other.HandleCall(context.Background(), at(incoming("s2", false), e.clock.Now()))
	require.NoError(t, err)
	assert.Len(t, e.crm.Created().Tasks, 1)
	assert.Len(t, e.crm.Created().Notes, 2)
}

// pausedTasks holds the first task write in the CRM until released, so that another
// instance handles its outcome in between.
type pausedTasks struct {
	laggingCRM
	once             sync.Once
	entered, release chan struct{}
}

func (p *pausedTasks) CreateTasks(ctx context.Context, ts []crm.NewTask) ([]int64, error) {
	first := false
	p.once.Do(func() { first = true })
	if first {
		close(p.entered)
		<-p.release
	}
	return p.laggingCRM.CreateTasks(ctx, ts)
}

// TestTwoInstancesMissedCallsAtOnceMakeOneTask: a client's two missed calls reach two
// crmlink instances at the same moment; while the first is writing its task, the second
// finds the window claimed, so the client gets one call-back task, not two.
func TestTwoInstancesMissedCallsAtOnceMakeOneTask(t *testing.T) {
	e := newEnvState(t, scenarios.Defaults(), events.NewRedisState(testrig.Redis(t), ""))
	e.openLead(e.knownClient())
	paused := &pausedTasks{laggingCRM: laggingCRM{e.crm}, entered: make(chan struct{}), release: make(chan struct{})}
	first := e.engine(t, scenarios.Defaults(), e.crm, paused)
	second := e.engine(t, scenarios.Defaults(), e.crm, laggingCRM{e.crm})

	done := make(chan error, 1)
	go func() {
		_, err := first.HandleCall(context.Background(), incoming("m1", false))
		done <- err
	}()
	select {
	case <-paused.entered:
	case err := <-done:
		t.Fatalf("the first instance finished without writing a task: %v", err)
	}
	res, err := second.HandleCall(context.Background(), incoming("m2", false))
	require.NoError(t, err)
	close(paused.release)
	require.NoError(t, <-done)

	assert.Len(t, e.crm.Created().Tasks, 1, "one call-back task for the client")
	assert.Len(t, e.crm.Created().Notes, 2, "each missed call is noted")
	assert.Contains(t, strings.Join(res.Reasons, "\n"), "+79161234567 already has a call-back task until 2026-03-02T11:00:00Z", "the second instance says why it wrote none")
}

// What a FileState records survives reopening; expired entries are dropped.
func TestFileStateSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rules-state.jsonl")
	s, err := events.OpenFileState(path)
	require.NoError(t, err)
	require.NoError(t, s.Save(ctx, "call:1:contact", []byte("1001"), time.Hour))
	require.NoError(t, s.MarkDone(ctx, "call:1:note", time.Hour))
	require.NoError(t, s.Save(ctx, "call:0:gone", []byte("x"), time.Nanosecond))
	until := time.Now().Add(time.Hour).Truncate(time.Second)
	_, err = s.ClaimTask(ctx, "+74951234567", "call:1:task", time.Now(), until, time.Hour)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s, err = events.OpenFileState(path)
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
