package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// stateFile is the settle state of the disk queue, replaced atomically (write, fsync,
// rename) after every group of settles: which records of each live segment are settled
// (acknowledged, rescheduled or dead) and the counters. A record is delivered again after
// a restart exactly when it is not marked here.
type stateFile struct {
	Version int `json:"version"`
	// LastSegment is the highest segment number created when the state was written; a
	// segment file numbered at most this and not listed was compacted and is deleted.
	LastSegment uint64         `json:"last_segment"`
	Segments    []stateSegment `json:"segments"`
	Processed   int64          `json:"processed"`
	Failures    int64          `json:"failures"`
}

type stateSegment struct {
	Num     uint64      `json:"n"`
	Settled [][2]uint32 `json:"settled"` // inclusive index ranges
	// Records is how many records the segment had when the state was written, so that
	// opening can tell records lost to damage (0 in states written before it existed).
	Records uint32 `json:"records,omitempty"`
}

const stateName = "state.json"

func readState(dir string) (stateFile, error) {
	var st stateFile
	b, err := os.ReadFile(filepath.Join(dir, stateName))
	if errors.Is(err, os.ErrNotExist) {
		return stateFile{Version: 1}, nil
	}
	if err != nil {
		return st, fmt.Errorf("queue: read %s: %w", stateName, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("queue: %s in %s is unreadable (%v); move it aside to have every stored event delivered again", stateName, dir, err)
	}
	if st.Version != 1 {
		return st, fmt.Errorf("queue: %s in %s has version %d; this crmlink reads version 1", stateName, dir, st.Version)
	}
	return st, nil
}

// settledSet is a bitset of settled record indexes in one segment.
type settledSet struct {
	words []uint64
	count uint32
}

func (s *settledSet) add(i uint32) {
	w := int(i / 64)
	for len(s.words) <= w {
		s.words = append(s.words, 0)
	}
	if s.words[w]&(1<<(i%64)) == 0 {
		s.words[w] |= 1 << (i % 64)
		s.count++
	}
}

func (s *settledSet) has(i uint32) bool {
	w := int(i / 64)
	return w < len(s.words) && s.words[w]&(1<<(i%64)) != 0
}

func (s *settledSet) ranges() [][2]uint32 {
	out := [][2]uint32{}
	open := false
	var start uint32
	for w, word := range s.words {
		for b := range 64 {
			i := uint32(w*64 + b)
			set := word&(1<<b) != 0
			switch {
			case set && !open:
				open, start = true, i
			case !set && open:
				out = append(out, [2]uint32{start, i - 1})
				open = false
			}
		}
	}
	if open {
		out = append(out, [2]uint32{start, uint32(len(s.words)*64 - 1)})
	}
	return out
}

// settledFromRanges rebuilds a set, keeping indexes below limit (records that exist).
func settledFromRanges(rs [][2]uint32, limit uint32) *settledSet {
	s := &settledSet{}
	for _, r := range rs {
		for i := r[0]; i <= r[1] && i < limit; i++ {
			s.add(i)
		}
	}
	return s
}
