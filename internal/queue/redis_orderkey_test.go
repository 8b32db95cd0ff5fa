package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
)

const waitLog = "event waits for its turn"

// keyedConsumer is a consumer of stream that orders events by their stored Key.
func keyedConsumer(t *testing.T, rdb redis.UniversalClient, stream, name string, log *testrig.LogBuffer) *Redis {
	t.Helper()
	opts := fastOptions(t)
	opts.OrderKey = func(e Event) string { return e.Key }
	if log != nil {
		opts.Logger = zerolog.New(log)
	}
	q, err := NewRedis(rdb, RedisOptions{Options: opts, Stream: stream, Consumer: name,
		ClaimMinIdle: 200 * time.Millisecond, readBlock: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// assertKeyLeft checks that nothing of an order key is left in Redis once its events are
// settled: its lease, queue and places go with the last acknowledgement.
func assertKeyLeft(t *testing.T, rdb redis.UniversalClient, q *Redis, key string) {
	t.Helper()
	n, err := rdb.Exists(context.Background(), q.keys.keyLease+key, q.keys.keyQueue+key, q.keys.keyAt+key).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the key's lease, queue and places are gone")
}

func keyedEvent(id, key string) Event {
	e := event(id, nil)
	e.Key = key
	return e
}

// oneClientOnTwo is two consumers a and b of one stream with two events of one client
// (jivo:visitor-7: chat-1/accepted, then chat-1/finished), the first handed to a, the second
// to b.
func oneClientOnTwo(t *testing.T, aLog, bLog *testrig.LogBuffer) (a, b *Redis) {
	t.Helper()
	rdb := testrig.Redis(t)
	stream := testStream(t)
	a = keyedConsumer(t, rdb, stream, "a", aLog)
	b = keyedConsumer(t, rdb, stream, "b", bLog)
	ctx := context.Background()
	require.NoError(t, a.Publish(ctx, keyedEvent("chat-1/accepted", "jivo:visitor-7")))
	require.NoError(t, a.Publish(ctx, keyedEvent("chat-1/finished", "jivo:visitor-7")))
	handOut(t, rdb, a, "a", "b")
	return a, b
}

// handOut delivers the stream's next entry to each consumer in turn, as XREADGROUP does
// when two instances read at once: each then resumes its own entry as soon as it runs.
func handOut(t *testing.T, rdb redis.UniversalClient, q *Redis, consumers ...string) {
	t.Helper()
	for _, c := range consumers {
		res, err := rdb.XReadGroup(context.Background(), &redis.XReadGroupArgs{Group: q.opts.Group, Consumer: c,
			Streams: []string{q.keys.stream, ">"}, Count: 1}).Result()
		require.NoError(t, err)
		require.Len(t, res[0].Messages, 1)
	}
}

// Two events of one client (a Jivo chat_accepted and the chat_finished that follows) reach
// two instances at once, one each. Handled together, both would look the new visitor up in
// amoCRM, find nobody and create a contact: two contacts. They must run one at a time, the
// earlier first, whichever instance gets to it first.
func TestRedisOneOrderKeyAcrossConsumers(t *testing.T) {
	cases := []struct {
		name string
		// laterFirst starts the consumer holding the later event first.
		laterFirst bool
	}{
		{"the earlier event's instance starts first", false},
		{"the later event's instance starts first", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var aLog, bLog testrig.LogBuffer
			a, b := oneClientOnTwo(t, &aLog, &bLog)

			var o overlap
			firstIn, goOn := make(chan struct{}), make(chan struct{})
			handler := func(who string) Handler {
				return func(ctx context.Context, e Event) error {
					o.enter(who + " " + e.ID)
					defer o.leave()
					if e.ID == "chat-1/accepted" {
						close(firstIn)
						select { // the amoCRM search and the new contact take a while
						case <-goOn:
						case <-ctx.Done():
						}
					}
					return nil
				}
			}
			bWaited := func() bool { return strings.Contains(bLog.String(), waitLog) }
			if c.laterFirst {
				startRun(t, b, handler("b"))
				testrig.WaitFor(t, 10*time.Second, "b waiting for the earlier event (or running the later one)", func() bool {
					return bWaited() || len(o.handlers()) > 0
				})
				startRun(t, a, handler("a"))
				<-firstIn
			} else {
				startRun(t, a, handler("a"))
				<-firstIn
				startRun(t, b, handler("b"))
				testrig.WaitFor(t, 10*time.Second, "b waiting for its turn (or running the later event)", func() bool {
					return bWaited() || len(o.handlers()) > 1
				})
			}
			close(goOn)
			waitStats(t, a, "both handled", settledAll(2))
			assert.Equal(t, int32(1), o.most.Load(), "never two handlers of one client at once")
			assert.Equal(t, []string{"a chat-1/accepted", "b chat-1/finished"}, o.handlers(), "both handled, in order, each by its instance")
			assertKeyLeft(t, a.rdb, a, "jivo:visitor-7")
		})
	}
}

// Events of different clients, one on each instance, still run at the same time.
func TestRedisOrderKeysRunInParallelAcrossConsumers(t *testing.T) {
	rdb := testrig.Redis(t)
	stream := testStream(t)
	a := keyedConsumer(t, rdb, stream, "a", nil)
	b := keyedConsumer(t, rdb, stream, "b", nil)
	ctx := context.Background()
	require.NoError(t, a.Publish(ctx, keyedEvent("chat-1/accepted", "jivo:visitor-7")))
	require.NoError(t, a.Publish(ctx, keyedEvent("chat-2/accepted", "jivo:visitor-8")))
	handOut(t, rdb, a, "a", "b")

	var o overlap
	in := make(chan string, 2)
	both := make(chan struct{})
	handler := func(who string) Handler {
		return func(ctx context.Context, e Event) error {
			o.enter(who)
			defer o.leave()
			in <- who
			select { // each waits for the other to be running too
			case <-both:
			case <-time.After(5 * time.Second):
			case <-ctx.Done():
			}
			return nil
		}
	}
	startRun(t, a, handler("a"))
	startRun(t, b, handler("b"))
	got := []string{<-in, <-in}
	close(both)
	waitStats(t, a, "both handled", settledAll(2))
	assert.ElementsMatch(t, []string{"a", "b"}, got)
	assert.Equal(t, int32(2), o.most.Load(), "different clients run in parallel on the two instances")
}

// An event of a client fails on one instance (amoCRM answered 502) while its later event
// is on the other: the later one waits for the failed one's retry, as it would on one
// instance, instead of reaching amoCRM first.
func TestRedisFailedEventHoldsBackItsKeyOnOtherConsumers(t *testing.T) {
	var bLog testrig.LogBuffer
	a, b := oneClientOnTwo(t, nil, &bLog)

	var o overlap
	firstIn, fail := make(chan struct{}), make(chan struct{})
	handler := func(who string) Handler {
		return func(ctx context.Context, e Event) error {
			o.enter(fmt.Sprintf("%s %s #%d", who, e.ID, e.Attempts))
			defer o.leave()
			if e.ID == "chat-1/accepted" && e.Attempts == 1 {
				close(firstIn)
				<-fail
				return errors.New("amoCRM answered 502")
			}
			return nil
		}
	}
	startRun(t, a, handler("a"))
	<-firstIn
	startRun(t, b, handler("b"))
	testrig.WaitFor(t, 10*time.Second, "b waiting for its turn (or running the later event)", func() bool {
		return strings.Contains(bLog.String(), waitLog) || len(o.handlers()) > 1
	})
	close(fail)
	waitStats(t, a, "both handled", settledAll(2))
	got := o.handlers()
	require.Len(t, got, 3)
	assert.Equal(t, "a chat-1/accepted #1", got[0])
	assert.Contains(t, got[1], "chat-1/accepted #2", "the failed event's retry comes before the later event")
	assert.Contains(t, got[2], "chat-1/finished #1")
	assert.Equal(t, int32(1), o.most.Load(), "never two handlers of one client at once")
	assertKeyLeft(t, a.rdb, a, "jivo:visitor-7")
}

// An instance dies holding a client's event; the client's next event reaches a live
// instance, which waits for the earlier one instead of overtaking it. Once it claims the
// dead instance's event (ClaimMinIdle later), that one goes first, though it came in
// after the event waiting for it.
func TestRedisClaimedEarlierEventGoesFirst(t *testing.T) {
	rdb := testrig.Redis(t)
	stream := testStream(t)
	var aLog testrig.LogBuffer
	a := keyedConsumer(t, rdb, stream, "a", &aLog)
	ctx := context.Background()
	require.NoError(t, a.Publish(ctx, keyedEvent("call-1", "phone:+79161234567")))
	require.NoError(t, a.Publish(ctx, keyedEvent("chat-1", "phone:+79161234567")))
	handOut(t, rdb, a, "dead") // the instance that read call-1 died before handling it

	rec := newRecorder(nil)
	startRun(t, a, rec.handle)
	waitStats(t, a, "both handled", settledAll(2))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Len(t, rec.order, 2)
	assert.Equal(t, []string{"call-1", "chat-1"}, []string{rec.order[0].ID, rec.order[1].ID})
	assert.Contains(t, aLog.String(), waitLog, "chat-1 waited for call-1")
}

// Many clients' events, two instances: per client one handler at a time and publish order
// (one failure and its retry included), while the clients spread over both instances.
func TestRedisOrderKeysAcrossConsumersUnderLoad(t *testing.T) {
	const keys, perKey = 6, 15
	rdb := testrig.Redis(t)
	stream := testStream(t)
	qs := []*Redis{keyedConsumer(t, rdb, stream, "a", nil), keyedConsumer(t, rdb, stream, "b", nil)}
	var (
		mu      sync.Mutex
		running = map[string]int{}
		seqs    = map[string][]string{}
		by      = map[string]bool{}
		overlap []string
	)
	handler := func(who string) Handler {
		return func(_ context.Context, e Event) error {
			mu.Lock()
			running[e.Key]++
			if running[e.Key] > 1 {
				overlap = append(overlap, e.ID)
			}
			seqs[e.Key] = append(seqs[e.Key], e.ID)
			by[who] = true
			mu.Unlock()
			time.Sleep(2 * time.Millisecond) // work, so that events overlap
			mu.Lock()
			running[e.Key]--
			mu.Unlock()
			if e.ID == "+70000000000/03" && e.Attempts == 1 {
				return errors.New("amoCRM timeout")
			}
			return nil
		}
	}
	for i := range perKey {
		for k := range keys {
			phone := fmt.Sprintf("+7000000000%d", k)
			require.NoError(t, qs[0].Publish(context.Background(), keyedEvent(fmt.Sprintf("%s/%02d", phone, i), phone)))
		}
	}
	startRun(t, qs[0], handler("a"))
	startRun(t, qs[1], handler("b"))
	waitStats(t, qs[0], "all events processed", settledAll(keys*perKey))

	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, overlap, "events of one client ran at once")
	assert.True(t, by["a"] && by["b"], "both instances handled events")
	for k := range keys {
		phone := fmt.Sprintf("+7000000000%d", k)
		var want []string
		for i := range perKey {
			want = append(want, fmt.Sprintf("%s/%02d", phone, i))
			if k == 0 && i == 3 {
				want = append(want, want[len(want)-1]) // the retry comes before seq 4
			}
		}
		assert.Equal(t, want, seqs[phone], "calls of %s in order", phone)
	}
}

// A client's earlier event vanished from the stream without being settled (trimmed past
// MaxLen, deleted by hand): its later events do not wait for it for ever.
func TestRedisVanishedEventDoesNotHoldItsKey(t *testing.T) {
	rdb := testrig.Redis(t)
	stream := testStream(t)
	a := keyedConsumer(t, rdb, stream, "a", nil)
	ctx := context.Background()
	require.NoError(t, a.Publish(ctx, keyedEvent("call-1", "phone:+79161234567")))
	require.NoError(t, a.Publish(ctx, keyedEvent("chat-1", "phone:+79161234567")))
	entries, err := rdb.XRange(ctx, a.keys.stream, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 2)
	require.NoError(t, rdb.XDel(ctx, a.keys.stream, entries[0].ID).Err())

	rec := newRecorder(nil)
	startRun(t, a, rec.handle)
	waitStats(t, a, "chat-1 handled", settledAll(1))
	assert.Len(t, rec.callsOf("chat-1"), 1)
	assertKeyLeft(t, rdb, a, "phone:+79161234567")
}
