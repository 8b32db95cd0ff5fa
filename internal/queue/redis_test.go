package queue

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
)

func newRedisConsumer(t *testing.T, rdb redis.UniversalClient, name string) *Redis {
	t.Helper()
	q, err := NewRedis(rdb, RedisOptions{Options: fastOptions(t), Stream: testStream(t), Consumer: name,
		ClaimMinIdle: 200 * time.Millisecond, readBlock: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func TestRedisClaimsTheEntriesOfADeadConsumer(t *testing.T) {
	rdb := testrig.Redis(t)
	q := newRedisConsumer(t, rdb, "live")
	ids := publishN(t, q, 5, "ev")
	// A consumer reads the entries and dies before settling them: they sit in its
	// pending list.
	res, err := rdb.XReadGroup(context.Background(), &redis.XReadGroupArgs{
		Group: q.opts.Group, Consumer: "ghost", Streams: []string{q.keys.stream, ">"}, Count: 10,
	}).Result()
	require.NoError(t, err)
	require.Len(t, res[0].Messages, 5)
	died := time.Now()
	s := stats(t, q)
	assert.False(t, s.OldestAt.IsZero(), "events wait: the oldest one's time")
	s.OldestAt = time.Time{}
	assert.Equal(t, Stats{InFlight: 5}, s)

	rec := newRecorder(nil)
	startRun(t, q, rec.handle)
	waitStats(t, q, "claimed and processed", settledAll(5))
	assert.GreaterOrEqual(t, time.Since(died), q.opts.ClaimMinIdle, "claimed only after ClaimMinIdle")
	for _, id := range ids {
		assert.Len(t, rec.callsOf(id), 1, id)
	}
}

func TestRedisSlowHandlerKeepsItsEntry(t *testing.T) {
	rdb := testrig.Redis(t)
	a := newRedisConsumer(t, rdb, "a")
	b := newRedisConsumer(t, rdb, "b")
	started := make(chan struct{})
	stopped := make(chan error, 1)
	slow := newRecorder(func(ctx context.Context, _ Event) error {
		close(started)
		time.Sleep(4 * a.opts.ClaimMinIdle) // a CRM write stuck behind the rate limit
		stopped <- context.Cause(ctx)
		return nil
	})
	startRun(t, a, slow.handle)
	require.NoError(t, a.Publish(context.Background(), event("slow", nil)))
	<-started
	other := newRecorder(nil)
	startRun(t, b, other.handle) // claims every ClaimMinIdle/2

	waitStats(t, a, "processed", settledAll(1))
	assert.Len(t, slow.callsOf("slow"), 1)
	assert.Empty(t, other.callsOf("slow"), "a live consumer's entry must not be claimed")
	assert.NoError(t, <-stopped, "the heartbeat keeps the event's lease: the handler is not stopped")
}

func TestRedisKeysShareTheStreamsHashSlot(t *testing.T) {
	for _, c := range []struct{ stream, retry, dead string }{
		{"crmlink:events", "{crmlink:events}:retry", "{crmlink:events}:dead"},
		{"{tenant1}:events", "{tenant1}:events:retry", "{tenant1}:events:dead"},
	} {
		k := keysFor(c.stream)
		assert.Equal(t, c.retry, k.retry)
		assert.Equal(t, c.dead, k.dead)
		assert.Equal(t, redisSlot(k.stream), redisSlot(k.retry), c.stream)
		assert.Equal(t, redisSlot(k.stream), redisSlot(k.stats), c.stream)
	}
}

// redisSlot is the Cluster hash tag rule: the part between the first { and the next }
// when it is not empty, else the whole key.
func redisSlot(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						return key[i+1 : j]
					}
					return key
				}
			}
			return key
		}
	}
	return key
}

func TestRedisOptionsAreChecked(t *testing.T) {
	rdb := testrig.Redis(t)
	_, err := NewRedis(rdb, RedisOptions{MaxLen: 10})
	assert.ErrorContains(t, err, "MaxLen 10 would drop events")
	_, err = NewRedis(rdb, RedisOptions{ClaimMinIdle: time.Millisecond})
	assert.ErrorContains(t, err, "ClaimMinIdle 1ms is too short")
	_, err = NewRedis(rdb, RedisOptions{Stream: "odd{}name"})
	assert.ErrorContains(t, err, "no Redis Cluster hash tag")
	_, err = NewRedis(nil, RedisOptions{})
	assert.ErrorContains(t, err, "needs a Redis client")

	q, err := NewRedis(rdb, RedisOptions{})
	require.NoError(t, err)
	assert.Equal(t, DefaultStream, q.opts.Stream)
	assert.Equal(t, DefaultGroup, q.opts.Group)
	assert.NotEmpty(t, q.opts.Consumer)
	assert.Equal(t, DefaultClaimMinIdle, q.opts.ClaimMinIdle)
	assert.Equal(t, DefaultRetryFor, q.opts.RetryFor)
	assert.Zero(t, q.opts.MaxAttempts, "no attempt cap: the horizon decides")
	assert.Equal(t, 4, q.opts.Concurrency)
}

// With WaitReplicas, an event is accepted only once a replica holds it: a master alone
// refuses it (the sender tries again), a master with a replica accepts it, and the replica
// has it the moment Publish returns, so a failover to that replica keeps it.
func TestRedisPublishWaitsForAReplica(t *testing.T) {
	master := testrig.PrivateRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: master})
	t.Cleanup(func() { _ = rdb.Close() })
	q, err := NewRedis(rdb, RedisOptions{Options: fastOptions(t), Stream: testStream(t), Consumer: "c",
		WaitReplicas: 1, WaitTimeout: 2 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	ctx := context.Background()

	err = q.Publish(ctx, Event{ID: "alone", Kind: "test", Payload: []byte(`{}`)})
	assert.ErrorContains(t, err, "0 of 1 Redis replicas confirmed it within 2s: a failover now could lose it")

	host, port, _ := strings.Cut(master, ":")
	replica := testrig.PrivateRedis(t, "--replicaof", host, port)
	rep := redis.NewClient(&redis.Options{Addr: replica})
	t.Cleanup(func() { _ = rep.Close() })
	testrig.WaitFor(t, 10*time.Second, "the replica in sync", func() bool {
		info, _ := rep.Info(ctx, "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	})
	for i := range 20 {
		id := fmt.Sprintf("ev-%d", i)
		require.NoError(t, q.Publish(ctx, Event{ID: id, Kind: "test", Payload: []byte(`{}`)}))
		entries, err := rep.XRange(ctx, q.keys.stream, "-", "+").Result()
		require.NoError(t, err)
		// The refused event is stored too: the sender's next try carries the same ID, and
		// the handlers' idempotency keys process it once.
		require.Len(t, entries, i+2, "the replica holds %s once Publish returned", id)
		assert.Contains(t, entries[i+1].Values["event"], `"`+id+`"`)
	}
}

// A Redis that refuses writes at start (min-replicas-to-write before its replica connects,
// a failover) does not stop crmlink from starting: the queue is built, refuses events until
// Redis takes writes, then creates its group and delivers what is published.
func TestRedisQueueStartsWhileRedisRefusesWrites(t *testing.T) {
	addr := testrig.PrivateRedis(t, "--min-replicas-to-write", "1")
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	q, err := NewRedis(rdb, RedisOptions{Options: fastOptions(t), Stream: testStream(t), Consumer: "c", readBlock: 50 * time.Millisecond})
	require.NoError(t, err, "no consumer group yet is no reason not to start")
	ctx := context.Background()
	assert.ErrorContains(t, q.Publish(ctx, Event{ID: "early", Kind: "test", Payload: []byte(`{}`)}), "NOREPLICAS")

	rec := newRecorder(nil)
	startRun(t, q, rec.handle)
	require.NoError(t, rdb.ConfigSet(ctx, "min-replicas-to-write", "0").Err())
	testrig.WaitFor(t, 10*time.Second, "the event accepted", func() bool {
		return q.Publish(ctx, Event{ID: "later", Kind: "test", Payload: []byte(`{}`)}) == nil
	})
	testrig.WaitFor(t, 10*time.Second, "the event handled", func() bool { return len(rec.callsOf("later")) == 1 })
}

// Two instances publish the same event (each crmlink's call observer saw the call end):
// it is queued once and handled once; another ID is not held up.
func TestRedisPublishesAnIDOnce(t *testing.T) {
	rdb := testrig.Redis(t)
	a := newRedisConsumer(t, rdb, "a")
	b := newRedisConsumer(t, rdb, "b")
	ctx := context.Background()
	require.NoError(t, a.Publish(ctx, event("call-1", nil)))
	require.NoError(t, b.Publish(ctx, event("call-1", nil)), "a second publish is no error")
	require.NoError(t, b.Publish(ctx, event("call-2", nil)))
	n, err := rdb.XLen(ctx, a.keys.stream).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(2), n, "one entry per ID")

	rec := newRecorder(nil)
	startRun(t, a, rec.handle)
	waitStats(t, a, "processed", settledAll(2))
	assert.Len(t, rec.callsOf("call-1"), 1)
	assert.Len(t, rec.callsOf("call-2"), 1)
	ttl, err := rdb.PTTL(ctx, a.keys.published+"call-1").Result()
	require.NoError(t, err)
	assert.InDelta(t, DefaultPublishedFor.Seconds(), ttl.Seconds(), 60, "the ID is remembered for a day")
}
