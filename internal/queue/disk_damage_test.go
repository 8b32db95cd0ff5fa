package queue

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordOffsets lists where each record of a segment starts, and the file's end.
func recordOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var offs []int64
	_, err = scanRecords(b, segPrefixLen, func(r record) error { offs = append(offs, r.off); return nil })
	require.NoError(t, err)
	return append(offs, int64(len(b)))
}

func rewrite(t *testing.T, path string, f func(b []byte, offs []int64) []byte) {
	t.Helper()
	offs := recordOffsets(t, path)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, f(b, offs), 0o640))
}

func zero(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// Damage to a segment loses only the records it hits: the events stored after it are
// delivered, and the loss is logged as what it is, naming the file and counting the
// pending events lost.
func TestDiskDeliversTheEventsAfterDamageAndReportsTheLoss(t *testing.T) {
	cases := []struct {
		name        string
		segmentSize int64
		damage      func(t *testing.T, segs []string)
		lost        []int  // events that cannot come back
		file        int    // segment named in the error
		logged      string // in the error line
	}{
		{"a flipped byte", 0, func(t *testing.T, segs []string) {
			rewrite(t, segs[0], func(b []byte, offs []int64) []byte { b[offs[5]+40] ^= 0x10; return b })
		}, []int{5}, 0, `"lost_events":1`},
		{"a zeroed block", 0, func(t *testing.T, segs []string) {
			rewrite(t, segs[0], func(b []byte, offs []int64) []byte { zero(b[offs[5]+3 : offs[8]+2]); return b })
		}, []int{5, 6, 7, 8}, 0, `"lost_events":4`},
		{"a truncated segment", 0, func(t *testing.T, segs []string) {
			rewrite(t, segs[0], func(b []byte, offs []int64) []byte { return b[:offs[10]+7] })
		}, []int{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, 0, `"lost_events":10`},
		{"a zeroed segment", 0, func(t *testing.T, segs []string) {
			rewrite(t, segs[0], func(b []byte, _ []int64) []byte { zero(b); return b })
		}, seq(0, 20), 0, `"lost_events":20`},
		{"a deleted segment", 1024, func(t *testing.T, segs []string) {
			require.Greater(t, len(segs), 2)
			require.NoError(t, os.Remove(segs[1]))
		}, nil, 1, "event log segment is missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			o := DiskOptions{Options: fastOptions(t), SegmentSize: c.segmentSize}
			q := openDiskAt(t, dir, o)
			ids := publishN(t, q, 20, "ev")
			require.NoError(t, q.Close())
			segs := segFiles(t, dir)
			lost := map[string]bool{}
			for _, i := range c.lost {
				lost[ids[i]] = true
			}
			if c.segmentSize > 0 {
				// The events of the deleted segment are the ones lost.
				first := len(recordOffsets(t, segs[0])) - 1
				for i := first; i < first+len(recordOffsets(t, segs[1]))-1; i++ {
					lost[ids[i]] = true
				}
			}
			c.damage(t, segs)

			var logs syncBuffer
			o.Logger = zerolog.New(&logs)
			q = openDiskAt(t, dir, o)
			var line string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, `"level":"error"`) && strings.Contains(l, filepath.Base(segs[c.file])) {
					line = l
				}
			}
			require.NotEmpty(t, line, "an error line names %s; the log:\n%s", filepath.Base(segs[c.file]), logs.String())
			assert.Contains(t, line, c.logged)
			assert.NotContains(t, logs.String(), "never acknowledged")

			rec := newRecorder(nil)
			startRun(t, q, rec.handle)
			want := 20 - len(lost)
			waitStats(t, q, "the surviving events processed", settledAll(int64(want)))
			for _, id := range ids {
				if lost[id] {
					assert.Empty(t, rec.callsOf(id), id)
				} else {
					assert.Len(t, rec.callsOf(id), 1, "%s was stored after or around the damage and must be delivered", id)
				}
			}
		})
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// legacyRecord is a record as crmlink wrote it before records carried a marker.
func legacyRecord(payload []byte) []byte {
	b := make([]byte, legacyHeader+len(payload))
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(payload, castagnoli))
	copy(b[legacyHeader:], payload)
	return b
}

// A queue directory written by an older crmlink opens: its events are delivered, its
// dead-letter list is kept (and rewritten in the current format), new events go on.
func TestDiskReadsFilesWrittenBeforeRecordMarkers(t *testing.T) {
	dir := t.TempDir()
	var seg, dead []byte
	for i := range 3 {
		b, err := json.Marshal(Event{ID: fmt.Sprintf("old-%d", i), Kind: "call_outcome", FirstSeen: time.Now()})
		require.NoError(t, err)
		seg = append(seg, legacyRecord(encodeSegPayload(0, pos{}, b))...)
	}
	b, err := json.Marshal(deadRecord{Op: "dead", Event: &Event{ID: "old-dead", Kind: "call_outcome"}, At: 1})
	require.NoError(t, err)
	dead = legacyRecord(b)
	require.NoError(t, os.WriteFile(filepath.Join(dir, segName(1)), seg, 0o640))
	require.NoError(t, os.WriteFile(filepath.Join(dir, deadName), dead, 0o640))
	require.NoError(t, os.WriteFile(filepath.Join(dir, stateName), []byte(`{"version":1,"last_segment":1,"segments":[{"n":1,"settled":[]}]}`), 0o640))

	q := openDiskAt(t, dir, DiskOptions{Options: fastOptions(t)})
	require.NoError(t, q.Publish(context.Background(), event("new", nil)))
	rec := newRecorder(nil)
	startRun(t, q, rec.handle)
	waitStats(t, q, "old and new events handled", settledAll(4))
	for _, id := range []string{"old-0", "old-1", "old-2", "new"} {
		assert.Len(t, rec.callsOf(id), 1, id)
	}
	require.Len(t, deadList(t, q), 1)
	assert.Equal(t, "old-dead", deadList(t, q)[0].ID)
	require.NoError(t, q.Replay(context.Background(), "old-dead"))
	require.NoError(t, q.Close())
	raw, err := os.ReadFile(filepath.Join(dir, deadName))
	require.NoError(t, err)
	assert.Equal(t, recordMarker[:], raw[:4], "the dead-letter list is in the current format")
}
