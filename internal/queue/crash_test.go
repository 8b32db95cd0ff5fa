package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
)

// The crash tests run TestCrashChild in a child process: it publishes crashEvents events,
// handles them, and writes a journal line for every publish that returned ("P"), every
// handler call ("H"), every handler return ("F"), every stored retry ("R") and every stored
// acknowledgement ("A"). Once crashKillAfter events are acknowledged, new handler calls
// never finish ("B"), so the child is killed with work in flight and work not started;
// every 17th event fails its first attempt, so retries are scheduled at the kill.
//
// The parent kills the child when every returned call has its outcome stored (as many "F"
// as "A" plus "R"): the journal then tells exactly which events are settled. A kill between
// a store write and its journal line would make the journal, not the queue, wrong.
const (
	crashEnv       = "CRMLINK_QUEUE_CRASH_CHILD"
	crashEvents    = 200
	crashKillAfter = 100 // acknowledgements in the journal
)

type crashConfig struct {
	Store     string
	Dir       string
	RedisAddr string
	RedisDB   int
	Stream    string
	Journal   string
}

func crashOptions() Options {
	return Options{Concurrency: 4, BackoffBase: time.Second, BackoffMax: time.Second, ShutdownGrace: time.Second}
}

func crashRedisOptions(stream, consumer string) RedisOptions {
	return RedisOptions{Options: crashOptions(), Stream: stream, Consumer: consumer,
		ClaimMinIdle: 200 * time.Millisecond, readBlock: 50 * time.Millisecond}
}

func TestCrashChild(t *testing.T) {
	raw := os.Getenv(crashEnv)
	if raw == "" {
		t.Skip("the crash tests run this in a child process")
	}
	var cfg crashConfig
	require.NoError(t, json.Unmarshal([]byte(raw), &cfg))
	journal, err := os.OpenFile(cfg.Journal, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	require.NoError(t, err)
	var mu sync.Mutex
	var acked atomic.Int64
	note := func(op string, e Event) {
		mu.Lock()
		defer mu.Unlock()
		// One write per line: a SIGKILL loses no line whose write returned.
		_, _ = fmt.Fprintf(journal, "%s %s %d\n", op, e.ID, e.Attempts)
	}
	o := crashOptions()
	o.Hooks.Acked = func(e Event, _ time.Duration) { note("A", e); acked.Add(1) }
	o.Hooks.Retried = func(e Event, _ error, _ time.Duration) { note("R", e) }

	var q Queue
	switch cfg.Store {
	case "disk":
		q, err = NewDisk(cfg.Dir, DiskOptions{Options: o})
	case "redis":
		rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, DB: cfg.RedisDB})
		ro := crashRedisOptions(cfg.Stream, "child")
		ro.Options = o
		q, err = NewRedis(rdb, ro)
	}
	require.NoError(t, err)

	var wg sync.WaitGroup
	for p := range 8 {
		wg.Go(func() {
			for i := p; i < crashEvents; i += 8 {
				e := event(crashID(i), map[string]int{"i": i})
				require.NoError(t, q.Publish(context.Background(), e))
				note("P", e)
			}
		})
	}
	wg.Wait()
	_ = q.Run(context.Background(), func(ctx context.Context, e Event) error {
		if acked.Load() >= crashKillAfter {
			note("B", e)
			<-ctx.Done()
			return ctx.Err()
		}
		note("H", e)
		defer note("F", e) // returned: its outcome is being stored
		if crashIndex(e.ID)%17 == 0 && e.Attempts == 1 {
			return errors.New("amoCRM 503")
		}
		time.Sleep(time.Millisecond)
		return nil
	})
	t.Fatal("the child's Run returned; it should have been killed")
}

func crashID(i int) string { return fmt.Sprintf("linkedid-%03d", i) }

func crashIndex(id string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(id, "linkedid-"))
	return i
}

// journal maps op -> event ID -> attempts of the last line; lines counts lines per op.
type journal map[string]map[string]int

func readJournal(t *testing.T, path string) journal {
	t.Helper()
	j := journal{"P": {}, "H": {}, "F": {}, "B": {}, "R": {}, "A": {}, "lines": {}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return j
	}
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	for _, line := range lines[:len(lines)-1] { // the last piece has no newline yet
		f := strings.Fields(line)
		if len(f) == 3 && j[f[0]] != nil {
			n, _ := strconv.Atoi(f[2])
			j[f[0]][f[1]] = n
			j["lines"][f[0]]++
		}
	}
	return j
}

// crashAndRecover runs the child, SIGKILLs it mid-way, opens the queue again with reopen
// and checks that every event the child did not acknowledge is delivered, and no
// acknowledged one is.
func crashAndRecover(t *testing.T, cfg crashConfig, reopen func(t *testing.T) Queue) {
	cfg.Journal = filepath.Join(t.TempDir(), "journal")
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), crashEnv+"="+string(raw))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		j := readJournal(t, cfg.Journal)
		n := j["lines"]
		if len(j["P"]) == crashEvents && len(j["A"]) >= crashKillAfter && n["B"] > 0 && n["F"] == n["A"]+n["R"] {
			break
		}
		select {
		case <-exited:
			t.Fatalf("the child exited before the kill:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child did not get to %d acknowledgements in time (%d published, %d acked):\n%s",
				crashKillAfter, len(j["P"]), len(j["A"]), out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no deferred code, no flush
	<-exited
	before := readJournal(t, cfg.Journal)
	retriedAtKill := 0
	for id := range before["R"] {
		if _, acked := before["A"][id]; !acked {
			retriedAtKill++
		}
	}
	t.Logf("at the kill: %d published, %d acknowledged, %d waiting for a retry, %d handler calls in flight",
		len(before["P"]), len(before["A"]), retriedAtKill, before["lines"]["B"])

	q := reopen(t)
	rec := newRecorder(nil)
	startRun(t, q, rec.handle)
	var missing []string
	testrig.WaitFor(t, 20*time.Second, "every unacknowledged event delivered after the restart", func() bool {
		missing = missing[:0]
		for i := range crashEvents {
			if _, acked := before["A"][crashID(i)]; !acked && len(rec.callsOf(crashID(i))) == 0 {
				missing = append(missing, crashID(i))
			}
		}
		if len(missing) > 0 && os.Getenv("CRASH_DEBUG") != "" {
			s, _ := q.Stats(context.Background())
			t.Logf("missing %v stats %+v", missing, s)
		}
		return len(missing) == 0
	})
	waitStats(t, q, "nothing left", func(s Stats) bool { return s.Pending == 0 && s.InFlight == 0 && s.Retrying == 0 })

	for i := range crashEvents {
		id := crashID(i)
		calls := rec.callsOf(id)
		if _, acked := before["A"][id]; acked {
			assert.Empty(t, calls, "%s was acknowledged before the kill and delivered again", id)
			continue
		}
		require.Len(t, calls, 1, "%s: delivered once after the restart", id)
		if n, retried := before["R"][id]; retried {
			assert.Equal(t, n+1, calls[0].Attempts, "%s: the stored retry keeps its attempt count", id)
		} else {
			assert.Equal(t, 1, calls[0].Attempts, "%s: a call cut by the crash is not an attempt", id)
		}
	}
	assert.Empty(t, deadList(t, q))
}

func TestDiskDeliversEveryUnacknowledgedEventAfterSIGKILL(t *testing.T) {
	dir := t.TempDir()
	crashAndRecover(t, crashConfig{Store: "disk", Dir: dir}, func(t *testing.T) Queue {
		o := DiskOptions{Options: crashOptions()}
		o.Logger = testLogger(t)
		return openDiskAt(t, dir, o)
	})
}

func TestRedisClaimsEveryUnacknowledgedEventAfterSIGKILL(t *testing.T) {
	addr, db := testrig.RedisDB(t)
	stream := testStream(t)
	crashAndRecover(t, crashConfig{Store: "redis", RedisAddr: addr, RedisDB: db, Stream: stream}, func(t *testing.T) Queue {
		rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db})
		t.Cleanup(func() { _ = rdb.Close() })
		o := crashRedisOptions(stream, "restarted") // another name: the claim path, not a resume
		o.Logger = testLogger(t)
		q, err := NewRedis(rdb, o)
		require.NoError(t, err)
		t.Cleanup(func() { _ = q.Close() })
		return q
	})
}
