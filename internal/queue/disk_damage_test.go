package queue

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
