package events_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/testrig"
)

func client(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// With WaitReplicas every write of the State counts only once a replica holds it: a master
// without one refuses them all, a master with one returns each write only when the replica
// has it.
func TestRedisStateWaitsForReplicas(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	writes := []struct {
		name  string
		write func(events.State) error
	}{
		{"save", func(s events.State) error { return s.Save(ctx, "plan", []byte("p"), time.Hour) }},
		{"mark done", func(s events.State) error { return s.MarkDone(ctx, "step:begun", time.Hour) }},
		{"claim a task", func(s events.State) error {
			_, err := s.ClaimTask(ctx, "+79261234567", "a", now, now.Add(time.Hour), time.Hour)
			return err
		}},
		{"release a task", func(s events.State) error { return s.ReleaseTask(ctx, "+79261234567", "a") }},
	}
	alone := client(t, testrig.PrivateRedis(t))
	for _, w := range writes {
		t.Run("alone/"+w.name, func(t *testing.T) {
			err := w.write(events.NewRedisState(alone, "test:", events.WaitReplicas(1, 100*time.Millisecond)))
			assert.ErrorContains(t, err, "0 of 1 Redis replicas confirmed it within 100ms")
			assert.NoError(t, w.write(events.NewRedisState(alone, "test:")), "without WaitReplicas the master's answer is enough")
		})
	}

	pair := testrig.NewRedisPair(t)
	state := events.NewRedisState(client(t, pair.Master), "test:", events.WaitReplicas(1, 2*time.Second))
	replica := client(t, pair.Replica)
	for i := range 20 {
		key := fmt.Sprintf("step-%d", i)
		require.NoError(t, state.Save(ctx, key, []byte(key), time.Hour))
		v, err := replica.Get(ctx, "test:"+key).Result()
		require.NoError(t, err, "the replica holds %s once Save returned", key)
		assert.Equal(t, key, v)
	}
	until, err := state.ClaimTask(ctx, crm.Phone("+79261234567"), "a", now, now.Add(time.Hour), time.Hour)
	require.NoError(t, err)
	assert.True(t, until.IsZero(), "claimed")
	v, err := replica.Get(ctx, "test:task:+79261234567").Result()
	require.NoError(t, err)
	assert.Contains(t, v, " a")
}

// The master dies with a step's begun mark and record not yet copied to its replica,
// which Sentinel promotes: the next attempt on the promoted replica must not create the
// contact again. With WaitReplicas the begun mark is refused while the replica does not
// confirm it, so the contact is not created until it is safely recorded.
func TestRedisStateFailoverDoesNotRepeatAStep(t *testing.T) {
	ctx := context.Background()
	pair := testrig.NewRedisPair(t)
	const prefix = "test:failover:"
	first := events.NewSteps(events.NewRedisState(client(t, pair.Master), prefix, events.WaitReplicas(1, 300*time.Millisecond)), "leads:jivo:1", time.Hour)
	var created []int64
	step := events.Once{
		Mark: true,
		Find: func() ([]byte, bool, error) {
			if len(created) == 0 {
				return nil, false, nil
			}
			return events.IDValue(created[0]), true, nil
		},
		Do: func() ([]byte, error) {
			created = append(created, int64(100+len(created)))
			return events.IDValue(created[len(created)-1]), nil
		},
	}
	_, ran, err := first.RunOnce(ctx, "plan-step", events.Once{Do: func() ([]byte, error) { return []byte("p"), nil }})
	require.NoError(t, err)
	require.Equal(t, events.RanNow, ran)

	pair.Hold() // the replica falls behind: nothing the master takes from now on reaches it
	_, _, err = first.RunOnce(ctx, "contact", step)
	assert.ErrorContains(t, err, "mark contact begun: rules state: set leads:jivo:1:contact:begun: 0 of 1 Redis replicas confirmed it")
	assert.Empty(t, created, "no contact is created while its begun mark is unconfirmed")

	second := events.NewSteps(events.NewRedisState(client(t, pair.Failover()), prefix), "leads:jivo:1", time.Hour)
	_, ran, err = second.RunOnce(ctx, "plan-step", events.Once{Do: func() ([]byte, error) { return []byte("again"), nil }})
	require.NoError(t, err)
	assert.Equal(t, events.RanEarlier, ran, "a step confirmed by the replica survives the failover")
	id, _, err := second.RunOnceID(ctx, "contact", step)
	require.NoError(t, err)
	assert.Len(t, created, 1, "the contact is created once across the failover")
	assert.Equal(t, int64(100), id)
}
