package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/testrig"
)

func openDiskAt(t *testing.T, dir string, o DiskOptions) *Disk {
	t.Helper()
	q, err := NewDisk(dir, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	require.NoError(t, err)
	return m
}

func TestDiskKeepsEventsRetriesAndDeadLettersAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	o := DiskOptions{Options: fastOptions(t)}
	// Long enough that the retry is still scheduled when the queue reopens.
	o.BackoffBase, o.BackoffMax = 600*time.Millisecond, 600*time.Millisecond

	q := openDiskAt(t, dir, o)
	rec := newRecorder(func(_ context.Context, e Event) error {
		switch e.ID {
		case "flaky":
			return errors.New("amoCRM 503")
		case "broken":
			return events.Permanent(errors.New("no such pipeline"))
		}
		return nil
	})
	stop := startRun(t, q, rec.handle)
	publishN(t, q, 3, "done")
	require.NoError(t, q.Publish(context.Background(), event("flaky", nil)))
	require.NoError(t, q.Publish(context.Background(), event("broken", nil)))
	waitStats(t, q, "3 processed, 1 retrying, 1 dead", func(s Stats) bool {
		return s.Processed == 3 && s.Retrying == 1 && s.Dead == 1 && s.InFlight == 0
	})
	stop()
	publishN(t, q, 2, "unread") // stored while nobody consumes
	require.NoError(t, q.Close())

	q = openDiskAt(t, dir, o)
	s := stats(t, q)
	assert.False(t, s.OldestAt.IsZero(), "events wait: the oldest one's time")
	s.OldestAt = time.Time{}
	assert.Equal(t, Stats{Pending: 2, Retrying: 1, Dead: 1, Processed: 3, Failures: 2}, s)
	dead := deadList(t, q)
	require.Len(t, dead, 1)
	assert.Equal(t, "broken", dead[0].ID)

	again := newRecorder(nil)
	startRun(t, q, again.handle)
	waitStats(t, q, "everything settled", settledAll(6))
	for _, id := range []string{"done-000", "done-001", "done-002", "broken"} {
		assert.Empty(t, again.callsOf(id), "%s was settled before the restart", id)
	}
	assert.Len(t, again.callsOf("unread-000"), 1)
	assert.Len(t, again.callsOf("unread-001"), 1)
	flaky := again.callsOf("flaky")
	require.Len(t, flaky, 1)
	assert.Equal(t, 2, flaky[0].Attempts, "the retry keeps its attempt count across the restart")
	assert.Equal(t, "amoCRM 503", flaky[0].LastError)
}

func TestDiskCompactsSettledSegments(t *testing.T) {
	dir := t.TempDir()
	q := openDiskAt(t, dir, DiskOptions{Options: fastOptions(t), SegmentSize: 1024})
	publishN(t, q, 100, "ev") // ~130 bytes a record: a dozen segments
	require.Greater(t, len(segFiles(t, dir)), 10)

	startRun(t, q, newRecorder(nil).handle)
	waitStats(t, q, "all processed", settledAll(100))
	require.Eventually(t, func() bool { return len(segFiles(t, dir)) == 1 }, 5*time.Second, 5*time.Millisecond,
		"only the active segment is left; have %d", len(segFiles(t, dir)))
	require.NoError(t, q.Close())

	q = openDiskAt(t, dir, DiskOptions{Options: fastOptions(t), SegmentSize: 1024})
	assert.Equal(t, Stats{Processed: 100}, stats(t, q), "nothing to deliver after a restart")
	assert.Empty(t, segFiles(t, dir), "the settled active segment goes at the next start")
}

func TestDiskTruncatesATornTail(t *testing.T) {
	header := func(size uint32) []byte {
		b := make([]byte, recordHeader)
		copy(b, recordMarker[:])
		binary.LittleEndian.PutUint32(b[4:], size)
		return b
	}
	const torn = "truncating it. A crash during a write leaves this, and that event was never acknowledged"
	cases := []struct {
		name    string
		damage  func(t *testing.T, path string) // to the last segment
		want    int                             // events delivered after reopening
		problem string
		msg     string
	}{
		{"torn header", appendBytes([]byte{0x2a, 0, 0}), 10, "torn record header", torn},
		{"torn record", appendBytes(append(header(200), bytes.Repeat([]byte{'x'}, 50)...)), 10, "torn record (50 of 200 bytes)", torn},
		{"zero-filled tail", appendBytes(make([]byte, 4096)), 10, "no record marker", torn},
		// The state written at Close counted 10 records: the 10th is known lost, not torn.
		{"last record corrupt", flipLastByte, 9, "checksum mismatch", `"lost_events":1,"message":"event log segment is damaged: stored events that were not yet delivered are lost`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			q := openDiskAt(t, dir, DiskOptions{Options: fastOptions(t)})
			ids := publishN(t, q, 10, "ev")
			require.NoError(t, q.Close())
			segs := segFiles(t, dir)
			require.Len(t, segs, 1)
			before, err := os.Stat(segs[0])
			require.NoError(t, err)
			c.damage(t, segs[0])

			var logs syncBuffer
			o := DiskOptions{Options: fastOptions(t)}
			o.Logger = zerolog.New(&logs)
			q = openDiskAt(t, dir, o)
			assert.Contains(t, logs.String(), c.msg)
			assert.Contains(t, logs.String(), c.problem)
			after, err := os.Stat(segs[0])
			require.NoError(t, err)
			if c.want == 10 {
				assert.Equal(t, before.Size(), after.Size(), "cut back to the last good record")
			} else {
				assert.Less(t, after.Size(), before.Size())
			}

			// What survived is delivered, and the log takes new events after the cut.
			require.NoError(t, q.Publish(context.Background(), event("new", nil)))
			rec := newRecorder(nil)
			startRun(t, q, rec.handle)
			waitStats(t, q, "survivors processed", settledAll(int64(c.want+1)))
			for _, id := range ids[:c.want] {
				assert.Len(t, rec.callsOf(id), 1, id)
			}
			assert.Len(t, rec.callsOf("new"), 1)
		})
	}
}

func TestDiskTruncatesATornDeadLetterLog(t *testing.T) {
	dir := t.TempDir()
	q := openDiskAt(t, dir, DiskOptions{Options: fastOptions(t)})
	startRun(t, q, newRecorder(func(context.Context, Event) error { return events.Permanent(errors.New("bad")) }).handle)
	publishN(t, q, 2, "ev")
	waitStats(t, q, "two dead", func(s Stats) bool { return s.Dead == 2 && s.InFlight == 0 })
	require.NoError(t, q.Close())
	appendBytes([]byte{9, 0, 0, 0, 1})(t, filepath.Join(dir, deadName))

	var logs syncBuffer
	o := DiskOptions{Options: fastOptions(t)}
	o.Logger = zerolog.New(&logs)
	q = openDiskAt(t, dir, o)
	assert.Contains(t, logs.String(), "dead-letter log is damaged (a crash during a write leaves a torn last record)")
	assert.Len(t, deadList(t, q), 2)
	require.NoError(t, q.Replay(context.Background(), "ev-000"), "the dead-letter log takes writes after the cut")
}

func TestDiskDirectoryBelongsToOneQueue(t *testing.T) {
	dir := t.TempDir()
	openDiskAt(t, dir, DiskOptions{})
	_, err := NewDisk(dir, DiskOptions{})
	require.ErrorContains(t, err, "in use by another process")
}

func TestDiskConcurrentPublishersShareFsyncs(t *testing.T) {
	q := openDiskAt(t, t.TempDir(), DiskOptions{Options: fastOptions(t)})
	var wg sync.WaitGroup
	for p := range 16 {
		wg.Go(func() {
			for i := range 25 {
				assert.NoError(t, q.Publish(context.Background(), event(fmt.Sprintf("p%02d-%02d", p, i), nil)))
			}
		})
	}
	wg.Wait()
	assert.EqualValues(t, 400, stats(t, q).Pending)
	assert.Less(t, q.log.syncs.Load(), uint64(400), "waiting publishers share an fsync")
	t.Logf("400 publishes, %d fsyncs", q.log.syncs.Load())
	rec := newRecorder(nil)
	startRun(t, q, rec.handle)
	waitStats(t, q, "all processed", settledAll(400))
	assert.Equal(t, 400, rec.distinct())
}

func TestDiskOptionsAreChecked(t *testing.T) {
	for _, c := range []struct {
		o    DiskOptions
		want string
	}{
		{DiskOptions{SegmentSize: 10}, "SegmentSize 10 is below 1 KiB"},
		{DiskOptions{Options: Options{BackoffBase: time.Minute, BackoffMax: time.Second}}, "BackoffMax 1s is below BackoffBase 1m0s"},
		{DiskOptions{Options: Options{Jitter: 2}}, "Jitter is 2"},
		{DiskOptions{Options: Options{MaxAttempts: -1}}, "MaxAttempts is -1"},
	} {
		_, err := NewDisk(t.TempDir(), c.o)
		assert.ErrorContains(t, err, c.want)
	}
}

func appendBytes(b []byte) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		require.NoError(t, err)
		_, err = f.Write(b)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
}

func flipLastByte(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[len(b)-1] ^= 0xff
	require.NoError(t, os.WriteFile(path, b, 0o640))
}

// syncBuffer is a log sink safe for the goroutines of the code under test.
type syncBuffer = testrig.LogBuffer

func TestDiskRetryStoredBeforeACrashReplacesTheFailedRecord(t *testing.T) {
	dir := t.TempDir()
	q := openDiskAt(t, dir, DiskOptions{Options: fastOptions(t)})
	require.NoError(t, q.Publish(context.Background(), event("ev", nil)))
	failed := q.ready[0]
	// The retry record is appended; the crash comes before the state says the failed
	// record is settled.
	b, err := json.Marshal(Event{ID: "ev", Kind: "call_outcome", Attempts: 1, LastError: "amoCRM 503", FirstSeen: time.Now()})
	require.NoError(t, err)
	_, err = q.appendEvent(b, 0, failed.pos)
	require.NoError(t, err)
	require.NoError(t, q.Close())

	q = openDiskAt(t, dir, DiskOptions{Options: fastOptions(t)})
	rec := newRecorder(nil)
	startRun(t, q, rec.handle)
	waitStats(t, q, "processed", settledAll(1))
	calls := rec.callsOf("ev")
	require.Len(t, calls, 1, "the failed record is not delivered next to its retry")
	assert.Equal(t, 2, calls[0].Attempts)
}
