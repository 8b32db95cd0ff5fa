package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
)

// A full directory stops new events, not the ones stored: they are delivered once each,
// the queue keeps running, Health says why, and once there is room the settles reach
// the state file and new events are taken.
func TestDiskKeepsDeliveringWhileItsDirectoryIsFull(t *testing.T) {
	dir := testrig.SmallDisk(t, "256k")
	q := openDiskAt(t, filepath.Join(dir, "queue"), DiskOptions{Options: fastOptions(t)})
	ids := publishN(t, q, 10, "ev")
	filler := testrig.FillDisk(t, dir)
	ids = append(ids, publishUntilFull(t, q)...)
	assert.ErrorContains(t, q.Health(), "no space left on device")

	rec := newRecorder(nil)
	startRun(t, q, rec.handle)
	waitStats(t, q, "the stored events handled", settledAll(int64(len(ids))))
	assert.ErrorContains(t, q.Health(), "no space left on device", "the state could not be written")

	require.NoError(t, os.Remove(filler))
	testrig.WaitFor(t, 30*time.Second, "the state written once there is room", func() bool { return q.Health() == nil })
	require.NoError(t, q.Publish(context.Background(), event("after", nil)))
	waitStats(t, q, "the new event handled", settledAll(int64(len(ids)+1)))
	for _, id := range append(ids, "after") {
		assert.Len(t, rec.callsOf(id), 1, id)
	}
	assert.Empty(t, rec.callsOf("refused"))
}

// publishUntilFull publishes events until the disk refuses one ("refused") and returns
// the IDs it took: a full disk still has room in the last page of the open segment.
func publishUntilFull(t *testing.T, q Queue) []string {
	t.Helper()
	var ids []string
	for i := range 1000 {
		id := fmt.Sprintf("late-%03d", i)
		if err := q.Publish(context.Background(), event(id, nil)); err != nil {
			require.ErrorContains(t, err, "no space left on device")
			return ids
		}
		ids = append(ids, id)
	}
	t.Fatal("the disk never filled up")
	return nil
}

// Outcomes the store cannot record are re-delivered after a growing pause: handlers that
// fail while the directory is full (their retries cannot be stored) run a few times in
// 3 s, not once per backoff of the handler (10 ms here).
func TestDiskBacksOffWhileItCannotStoreOutcomes(t *testing.T) {
	dir := testrig.SmallDisk(t, "256k")
	q := openDiskAt(t, filepath.Join(dir, "queue"), DiskOptions{Options: fastOptions(t)})
	publishN(t, q, 1, "ev")
	testrig.FillDisk(t, dir)
	publishUntilFull(t, q)

	var calls atomic.Int32
	startRun(t, q, func(context.Context, Event) error {
		calls.Add(1)
		return errors.New("amoCRM 503")
	})
	time.Sleep(3 * time.Second)
	n := calls.Load()
	t.Logf("handler calls in 3 s: %d", n)
	assert.Greater(t, n, int32(fastOptions(t).Concurrency), "events are tried again")
	assert.LessOrEqual(t, n, int32(12), "pauses of 0.5, 1, 2, 4 s... between attempts, whichever worker fails")
}

// A queue that cannot open (its directory is full) is no error for OpenDisk: it refuses
// events with ErrUnavailable and opens by itself once there is room.
func TestOpenDiskOpensOnceTheDirectoryHasRoom(t *testing.T) {
	dir := testrig.SmallDisk(t, "256k")
	filler := testrig.FillDisk(t, dir)
	q, err := OpenDisk(filepath.Join(dir, "queue"), DiskOptions{Options: fastOptions(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })

	assert.ErrorIs(t, q.Publish(context.Background(), event("early", nil)), ErrUnavailable)
	assert.ErrorContains(t, q.Health(), "no space left on device")
	_, err = q.Stats(context.Background())
	assert.ErrorIs(t, err, ErrUnavailable)

	rec := newRecorder(nil)
	startRun(t, q, rec.handle)
	require.NoError(t, os.Remove(filler))
	testrig.WaitFor(t, 30*time.Second, "the queue open", func() bool { return q.Health() == nil })
	require.NoError(t, q.Publish(context.Background(), event("later", nil)))
	waitStats(t, q, "the event handled", settledAll(1))
	assert.Len(t, rec.callsOf("later"), 1)
}

func TestOpenDiskRefusesADirectoryInUse(t *testing.T) {
	dir := t.TempDir()
	openDiskAt(t, dir, DiskOptions{})
	_, err := OpenDisk(dir, DiskOptions{})
	require.ErrorContains(t, err, "in use by another process")
}

// An idle queue whose directory filled up shows as failed after a refused event, and as
// working again once there is room, without waiting for another event.
func TestDiskHealthRecoversWhenIdle(t *testing.T) {
	dir := testrig.SmallDisk(t, "256k")
	q := openDiskAt(t, filepath.Join(dir, "queue"), DiskOptions{Options: fastOptions(t)})
	publishN(t, q, 1, "ev")
	filler := testrig.FillDisk(t, dir)
	publishUntilFull(t, q)
	require.ErrorContains(t, q.Health(), "no space left on device")
	require.NoError(t, os.Remove(filler))
	testrig.WaitFor(t, 30*time.Second, "healthy again", func() bool { return q.Health() == nil })
}
