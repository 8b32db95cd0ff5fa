package queue

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
)

// overlap counts the handlers of one event running at once, across consumers.
type overlap struct {
	running, most atomic.Int32
	mu            sync.Mutex
	by            []string
}

func (o *overlap) enter(who string) {
	n := o.running.Add(1)
	for {
		m := o.most.Load()
		if n <= m || o.most.CompareAndSwap(m, n) {
			break
		}
	}
	o.mu.Lock()
	o.by = append(o.by, who)
	o.mu.Unlock()
}

func (o *overlap) leave() { o.running.Add(-1) }

func (o *overlap) handlers() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.by...)
}

func leaseConsumer(t *testing.T, rdb redis.UniversalClient, stream, name string, log *testrig.LogBuffer) *Redis {
	t.Helper()
	opts := fastOptions(t)
	if log != nil {
		opts.Logger = zerolog.New(log)
	}
	q, err := NewRedis(rdb, RedisOptions{Options: opts, Stream: stream, Consumer: name,
		ClaimMinIdle: 200 * time.Millisecond, readBlock: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// The entry of an event one consumer is handling ends up pending under another (a claim
// of an entry whose holder was taken for dead, a delivery a failover lost, a restarted
// instance resuming its entries): the other must leave the event to the one handling it,
// not run it at the same time.
func TestRedisEventRunningElsewhereIsLeftAlone(t *testing.T) {
	rdb := testrig.Redis(t)
	stream := testStream(t)
	a := leaseConsumer(t, rdb, stream, "a", nil)
	var bLog testrig.LogBuffer
	b := leaseConsumer(t, rdb, stream, "b", &bLog)
	var o overlap
	started, finish := make(chan struct{}), make(chan struct{})
	handler := func(who string) Handler {
		return func(ctx context.Context, e Event) error {
			o.enter(who)
			defer o.leave()
			if who == "a" {
				close(started)
				<-finish // a CRM write stuck behind the rate limit
			}
			return nil
		}
	}
	require.NoError(t, a.Publish(context.Background(), event("chat-1", nil)))
	startRun(t, a, handler("a"))
	<-started
	ctx := context.Background()
	entries, err := rdb.XRange(ctx, a.keys.stream, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 1)
	// The entry moves to b while a runs it.
	require.NoError(t, rdb.XClaim(ctx, &redis.XClaimArgs{Stream: a.keys.stream, Group: a.opts.Group,
		Consumer: "b", Messages: []string{entries[0].ID}}).Err())

	startRun(t, b, handler("b")) // resumes its own pending entries at once
	testrig.WaitFor(t, 10*time.Second, "b leaving the event to a", func() bool {
		return strings.Contains(bLog.String(), "event is being handled by another consumer") || len(o.handlers()) > 1
	})
	close(finish)
	waitStats(t, a, "processed", settledAll(1))
	assert.Equal(t, int32(1), o.most.Load(), "never two handlers of the event at once")
	assert.Equal(t, []string{"a"}, o.handlers(), "handled by a alone")
	n, err := rdb.Exists(ctx, a.keys.lease+"chat-1").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the lease is dropped with the acknowledgement")
}

// A consumer cut off from Redis while its handler runs (a failover, a partition) cannot
// refresh its entry, and another consumer claims it once it has been idle ClaimMinIdle:
// by then the cut-off consumer has stopped its handler, so the two never run the event at
// once, and the event is handled to the end by the other.
func TestRedisConsumerCutOffStopsBeforeItsEventIsClaimed(t *testing.T) {
	addr, db := testrig.RedisDB(t)
	stream := testStream(t)
	link := testrig.NewCutProxy(t, addr)
	viaLink := redis.NewClient(&redis.Options{Addr: link.Addr(), DB: db, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = viaLink.Close() })
	direct := redis.NewClient(&redis.Options{Addr: addr, DB: db})
	t.Cleanup(func() { _ = direct.Close() })
	a := leaseConsumer(t, viaLink, stream, "a", nil)
	b := leaseConsumer(t, direct, stream, "b", nil)

	var o overlap
	started := make(chan struct{})
	var aStopped atomic.Value
	require.NoError(t, b.Publish(context.Background(), event("chat-1", nil)))
	startRun(t, a, func(ctx context.Context, e Event) error {
		o.enter("a")
		defer o.leave()
		close(started)
		<-ctx.Done() // the handler waits on the CRM until its context ends
		aStopped.Store(context.Cause(ctx))
		return ctx.Err()
	})
	<-started
	link.Cut()
	cutAt := time.Now()
	startRun(t, b, func(ctx context.Context, e Event) error {
		o.enter("b")
		defer o.leave()
		return nil
	})
	waitStats(t, b, "processed by b", settledAll(1))
	assert.GreaterOrEqual(t, time.Since(cutAt), b.opts.ClaimMinIdle, "claimed only once idle")
	assert.Equal(t, int32(1), o.most.Load(), "never two handlers of the event at once")
	assert.Equal(t, []string{"a", "b"}, o.handlers())
	stopped, _ := aStopped.Load().(error)
	assert.ErrorIs(t, stopped, errLeaseLost, "a's handler was stopped by its lease running out")
	link.Heal() // a's blocked read ends now (its connection closed), not 10 s after its block ran out
}

// With WaitReplicas an event's lease counts only once the replicas hold it: a master
// alone takes the lease but cannot confirm it, so the handler does not run (a failover
// could lose the lease and let another consumer run the event too). The same holds for
// the lease of an order key.
func TestRedisLeaseWaitsForReplicas(t *testing.T) {
	cases := []struct {
		name string
		key  string
	}{
		{"event lease", ""},
		{"order key lease", "jivo:visitor-7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: testrig.PrivateRedis(t)})
			t.Cleanup(func() { _ = rdb.Close() })
			stream := testStream(t)
			opts := fastOptions(t)
			opts.OrderKey = func(e Event) string { return e.Key }
			plain, err := NewRedis(rdb, RedisOptions{Options: opts, Stream: stream, Consumer: "publisher"})
			require.NoError(t, err)
			e := event("chat-1", nil)
			e.Key = c.key
			require.NoError(t, plain.Publish(context.Background(), e))
			var log testrig.LogBuffer
			opts.Logger = zerolog.New(&log)
			q, err := NewRedis(rdb, RedisOptions{Options: opts, Stream: stream, Consumer: "c", WaitReplicas: 1,
				WaitTimeout: 20 * time.Millisecond, ClaimMinIdle: 200 * time.Millisecond, readBlock: 50 * time.Millisecond})
			require.NoError(t, err)
			t.Cleanup(func() { _ = q.Close() })
			rec := newRecorder(nil)
			startRun(t, q, rec.handle)
			testrig.WaitFor(t, 10*time.Second, "the lease refused", func() bool {
				return strings.Contains(log.String(), `take the lease of event \"chat-1\": 0 of 1 Redis replicas confirmed it within 20ms`)
			})
			assert.Empty(t, rec.callsOf("chat-1"), "no handler runs without a confirmed lease")
		})
	}
}
