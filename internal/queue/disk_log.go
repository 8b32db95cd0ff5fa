package queue

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// pos names a record: its segment and its index in the segment.
type pos struct {
	seg uint64
	idx uint32
}

// segLog is the append-only event log: numbered segment files of records whose payload
// is a 20-byte prefix, then the event's JSON. The prefix is the due time (unix ms,
// little-endian int64; 0 = now) and the position of the record this one supersedes
// (segment uint64, index uint32; segment 0 = none): a retry names the failed record, so
// appending it settles that record even if the state file is not written before a crash.
// Appends are written at once and made durable by a shared fsync: concurrent publishers
// wait for one Sync instead of one each.
type segLog struct {
	dir     string
	maxSize int64

	wmu     sync.Mutex
	cur     *os.File // active segment; nil until the first append after opening
	curNum  uint64
	curSize int64
	nextNum uint64
	records map[uint64]uint32 // records per live segment
	legacy  map[uint64]bool   // segments written before records carried a marker; set at open
	written uint64            // records appended since opening
	retired []*os.File        // rotated segments, synced, closed by the next syncer
	broken  error             // a failed fsync: the log can no longer promise durability

	smu    sync.Mutex // one Sync at a time
	synced atomic.Uint64
	syncs  atomic.Uint64 // fsyncs of the log, for tests of the group commit

	rmu     sync.Mutex
	readers map[uint64]*os.File
}

const segPrefix, segSuffix = "seg-", ".log"

func segName(num uint64) string { return fmt.Sprintf("%s%016d%s", segPrefix, num, segSuffix) }

// listSegments returns the segment numbers in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var nums []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix), 10, 64)
		if err == nil {
			nums = append(nums, n)
		}
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	return nums, nil
}

const segPrefixLen = 20

func encodeSegPayload(due int64, supersedes pos, event []byte) []byte {
	p := make([]byte, segPrefixLen+len(event))
	binary.LittleEndian.PutUint64(p[0:8], uint64(due))
	binary.LittleEndian.PutUint64(p[8:16], supersedes.seg)
	binary.LittleEndian.PutUint32(p[16:20], supersedes.idx)
	copy(p[segPrefixLen:], event)
	return p
}

func decodeSegPayload(p []byte) (due int64, supersedes pos, event []byte) {
	due = int64(binary.LittleEndian.Uint64(p[0:8]))
	supersedes = pos{seg: binary.LittleEndian.Uint64(p[8:16]), idx: binary.LittleEndian.Uint32(p[16:20])}
	return due, supersedes, p[segPrefixLen:]
}

func (l *segLog) path(num uint64) string { return filepath.Join(l.dir, segName(num)) }

// appendRecord writes one record, waits until it is durable and returns where it is.
func (l *segLog) appendRecord(payload []byte) (pos, int64, int, error) {
	l.wmu.Lock()
	if l.broken != nil {
		l.wmu.Unlock()
		return pos{}, 0, 0, l.broken
	}
	if l.cur == nil || l.curSize >= l.maxSize {
		if err := l.rotateLocked(); err != nil {
			l.wmu.Unlock()
			return pos{}, 0, 0, err
		}
	}
	rec := encodeRecord(l.records[l.curNum], payload)
	if n, err := l.cur.Write(rec); err != nil {
		// Cut a partial record off at once: records appended after it would otherwise sit
		// behind garbage that the next open truncates, taking them along.
		if n > 0 {
			if terr := l.cur.Truncate(l.curSize); terr != nil {
				l.broken = fmt.Errorf("queue: event log %s is damaged after a failed write (%v) and truncate: %w", l.path(l.curNum), err, terr)
			}
		}
		l.wmu.Unlock()
		return pos{}, 0, 0, fmt.Errorf("queue: write event log: %w", err)
	}
	p := pos{seg: l.curNum, idx: l.records[l.curNum]}
	off := l.curSize
	l.records[l.curNum]++
	l.curSize += int64(len(rec))
	l.written++
	seq := l.written
	l.wmu.Unlock()
	return p, off, len(rec), l.syncTo(seq)
}

// rotateLocked seals the active segment and starts the next one.
func (l *segLog) rotateLocked() error {
	if l.cur != nil {
		if err := l.cur.Sync(); err != nil {
			l.broken = fmt.Errorf("queue: fsync event log %s: %w", l.path(l.curNum), err)
			return l.broken
		}
		storeMax(&l.synced, l.written)
		l.retired = append(l.retired, l.cur)
		l.cur = nil
	}
	num := l.nextNum
	f, err := os.OpenFile(l.path(num), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("queue: create event log segment: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		// Not kept: the next attempt creates the same number.
		_ = os.Remove(l.path(num))
		return fmt.Errorf("queue: create event log segment: %w", err)
	}
	l.nextNum++
	l.cur, l.curNum, l.curSize = f, num, 0
	l.records[num] = 0
	return nil
}

// syncTo returns once record number seq is durable. Whoever holds smu syncs everything
// written so far, so the publishers queued behind it usually find their record synced.
func (l *segLog) syncTo(seq uint64) error {
	if l.synced.Load() >= seq {
		return nil
	}
	l.smu.Lock()
	defer l.smu.Unlock()
	if l.synced.Load() >= seq {
		return nil
	}
	l.wmu.Lock()
	target, f, num, retired, broken := l.written, l.cur, l.curNum, l.retired, l.broken
	l.retired = nil
	l.wmu.Unlock()
	for _, r := range retired {
		_ = r.Close()
	}
	if broken != nil {
		return broken
	}
	l.syncs.Add(1)
	if err := f.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages: nothing written
		// since the last good fsync can be trusted, so stop promising durability.
		err = fmt.Errorf("queue: fsync event log %s: %w", l.path(num), err)
		l.wmu.Lock()
		l.broken = err
		l.wmu.Unlock()
		return err
	}
	storeMax(&l.synced, target)
	return nil
}

func storeMax(a *atomic.Uint64, v uint64) {
	for {
		cur := a.Load()
		if cur >= v || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// read returns the payload of the record p at off.
func (l *segLog) read(p pos, off int64, size int) ([]byte, error) {
	l.rmu.Lock()
	f := l.readers[p.seg]
	if f == nil {
		var err error
		if f, err = os.Open(l.path(p.seg)); err != nil {
			l.rmu.Unlock()
			return nil, err
		}
		l.readers[p.seg] = f
	}
	l.rmu.Unlock()
	b := make([]byte, size)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, err
	}
	legacy := l.legacy[p.seg]
	idx, payload, err := decodeRecord(b, legacy)
	if err == nil && !legacy && idx != p.idx {
		err = fmt.Errorf("record %d found where record %d was", idx, p.idx)
	}
	return payload, err
}

// snapshot returns the record counts of the live segments, the highest segment number
// created and the active segment (0 when none).
func (l *segLog) snapshot() (records map[uint64]uint32, last, active uint64) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	records = make(map[uint64]uint32, len(l.records))
	for k, v := range l.records {
		records[k] = v
	}
	if l.cur != nil {
		active = l.curNum
	}
	return records, l.nextNum - 1, active
}

// remove deletes a sealed segment whose records are all settled.
func (l *segLog) remove(num uint64) error {
	l.rmu.Lock()
	if f := l.readers[num]; f != nil {
		_ = f.Close()
		delete(l.readers, num)
	}
	l.rmu.Unlock()
	l.wmu.Lock()
	delete(l.records, num)
	l.wmu.Unlock()
	return os.Remove(l.path(num))
}

func (l *segLog) err() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.broken
}

func (l *segLog) close() error {
	l.smu.Lock()
	defer l.smu.Unlock()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	var first error
	for _, r := range l.retired {
		_ = r.Close()
	}
	l.retired = nil
	if l.cur != nil {
		if err := l.cur.Sync(); err != nil {
			first = err
		}
		if err := l.cur.Close(); err != nil && first == nil {
			first = err
		}
		l.cur = nil
	}
	if l.broken == nil {
		l.broken = ErrClosed
	}
	l.rmu.Lock()
	for k, f := range l.readers {
		_ = f.Close()
		delete(l.readers, k)
	}
	l.rmu.Unlock()
	return first
}
