package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
)

// opener opens a fresh, empty queue of one store with the given delivery options.
type opener func(t *testing.T, o Options) Queue

type storeCase struct {
	name string
	open opener
}

func openDisk(t *testing.T, o Options) Queue {
	t.Helper()
	q, err := NewDisk(t.TempDir(), DiskOptions{Options: o})
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func openRedis(t *testing.T, o Options) Queue {
	t.Helper()
	// A stream of the test's own on top of the DB of its own: other packages' tests share
	// the rig's Redis.
	q, err := NewRedis(testrig.Redis(t), RedisOptions{Options: o, Stream: testStream(t),
		ClaimMinIdle: 200 * time.Millisecond, readBlock: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	return q
}

var stores = []storeCase{{"disk", openDisk}, {"redis", openRedis}}

// forEachStore runs the same behaviour against every store.
func forEachStore(t *testing.T, f func(t *testing.T, open opener)) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) { f(t, s.open) })
	}
}

// fastOptions shrink the delays so that retries happen in milliseconds.
func fastOptions(t *testing.T) Options {
	return Options{
		Concurrency:    4,
		BackoffBase:    10 * time.Millisecond,
		BackoffMax:     40 * time.Millisecond,
		HandlerTimeout: 10 * time.Second,
		ShutdownGrace:  2 * time.Second,
		Logger:         testLogger(t),
	}
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// startRun starts q.Run(h) and returns a stop function, also registered as cleanup, that ends
// Run and checks it returned nil.
func startRun(t *testing.T, q Queue, h Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- q.Run(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return 10 s after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// recorder is a Handler that keeps every call and answers with fn (nil: success).
type recorder struct {
	mu    sync.Mutex
	calls map[string][]Event
	order []Event
	fn    func(ctx context.Context, e Event) error
}

func newRecorder(fn func(ctx context.Context, e Event) error) *recorder {
	return &recorder{calls: map[string][]Event{}, fn: fn}
}

func (r *recorder) handle(ctx context.Context, e Event) error {
	r.mu.Lock()
	r.calls[e.ID] = append(r.calls[e.ID], e)
	r.order = append(r.order, e)
	r.mu.Unlock()
	if r.fn != nil {
		return r.fn(ctx, e)
	}
	return nil
}

func (r *recorder) callsOf(id string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.calls[id]...)
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func event(id string, payload any) Event {
	b, _ := json.Marshal(payload)
	return Event{ID: id, Kind: "call_outcome", Payload: b}
}

func publishN(t *testing.T, q Queue, n int, prefix string) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s-%03d", prefix, i)
		require.NoError(t, q.Publish(context.Background(), event(ids[i], map[string]int{"n": i})))
	}
	return ids
}

func stats(t *testing.T, q Queue) Stats {
	t.Helper()
	s, err := q.Stats(context.Background())
	require.NoError(t, err)
	return s
}

// waitStats polls Stats until cond holds or the deadline passes.
func waitStats(t *testing.T, q Queue, what string, cond func(Stats) bool) Stats {
	t.Helper()
	var last Stats
	testrig.WaitFor(t, 15*time.Second, what, func() bool {
		s, err := q.Stats(context.Background())
		last = s
		return err == nil && cond(s)
	})
	return last
}

func settledAll(n int64) func(Stats) bool {
	return func(s Stats) bool {
		return s.Processed == n && s.Pending == 0 && s.InFlight == 0 && s.Retrying == 0
	}
}

func deadList(t *testing.T, q Queue) []Event {
	t.Helper()
	d, err := q.Dead(context.Background(), 0)
	require.NoError(t, err)
	return d
}

// testStream is a stream name of the test's own: other packages' tests, and other runs of
// this one, share the rig's Redis.
func testStream(t *testing.T) string {
	return fmt.Sprintf("crmlink:test:%d:%s", os.Getpid(), t.Name())
}
