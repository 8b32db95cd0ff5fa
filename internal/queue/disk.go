package queue

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultSegmentSize is the size at which the disk queue starts a new log segment.
const DefaultSegmentSize = 16 << 20

// DiskOptions configure the on-disk queue.
type DiskOptions struct {
	Options
	// SegmentSize is the size at which the event log starts a new segment file; a segment
	// is deleted once every event in it is settled. Default 16 MiB.
	SegmentSize int64
}

func (o DiskOptions) withDefaults() (DiskOptions, error) {
	var err error
	if o.Options, err = o.Options.withDefaults(); err != nil {
		return o, err
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SegmentSize < 1024 {
		return o, fmt.Errorf("queue: SegmentSize %d is below 1 KiB; use a larger size, or 0 for %d", o.SegmentSize, DefaultSegmentSize)
	}
	return o, nil
}

// Disk is the Queue on local disk for a single crmlink instance without Redis. Its
// directory holds:
//
//	seg-<n>.log  the event log: every publish, retry and replay appends a record
//	state.json   which records are settled, and the counters (replaced atomically)
//	dead.log     the dead-letter list (append-only)
//	LOCK         held while the queue is open, so one process owns the directory
//
// Publish returns after its record is fsynced; after a crash every record not marked
// settled in state.json is delivered again, retries at their scheduled time.
type Disk struct {
	dir  string
	opts DiskOptions
	lock *os.File
	log  *segLog

	mu        sync.Mutex
	ready     []*diskEntry
	delayed   entryHeap
	inflight  map[pos]*diskEntry
	settled   map[uint64]*settledSet
	processed int64
	failures  int64
	stateGen  uint64
	seq       uint64
	fatal     error
	notify    chan struct{}

	smu      sync.Mutex // one state write at a time
	savedGen uint64

	// The streaks of failed writes (a full or read-only directory) of the log, the state
	// and the dead-letter list, apart: on a directory that is read-only for new files the
	// open log may take appends while the state cannot be replaced. Settles stay in
	// memory meanwhile and the state write is retried with backoff (stateRetry).
	logHealth, stateHealth, deadHealth storeHealth
	stateRetry                         bool
	closing                            chan struct{}
	opened                             bool // open has finished: its own failures are NewDisk's error, not logged

	deadMu sync.Mutex
	dead   *deadLog

	closed atomic.Bool
	runMu  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

var _ Queue = (*Disk)(nil)

// diskEntry locates an unsettled record.
type diskEntry struct {
	pos  pos
	off  int64
	size int
	due  int64 // unix ms; 0 = now
	seq  uint64
	// at is when the event was stored (unix ms); for events found at start, the start.
	at int64
}

// NewDisk opens (or creates) the queue in dir, truncating a torn tail left by a crash,
// and schedules every unsettled event for delivery.
func NewDisk(dir string, opts DiskOptions) (*Disk, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	opts.Logger = opts.Logger.With().Str("component", "queue").Str("store", "disk").Logger()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("queue: create %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	d := &Disk{
		dir:      dir,
		opts:     opts,
		lock:     lock,
		inflight: map[pos]*diskEntry{},
		settled:  map[uint64]*settledSet{},
		notify:   make(chan struct{}, 1),
		closing:  make(chan struct{}),
	}
	d.logHealth.log, d.stateHealth.log, d.deadHealth.log = opts.Logger, opts.Logger, opts.Logger
	if err := d.open(); err != nil {
		if d.dead != nil {
			_ = d.dead.close()
		}
		_ = lock.Close()
		return nil, err
	}
	return d, nil
}

func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("queue: open lock file in %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, inUseError(fmt.Sprintf("queue: %s is in use by another process (%v); give each crmlink instance its own data directory, or configure Redis to share a queue", dir, err))
	}
	return f, nil
}

func (d *Disk) open() error {
	st, err := readState(d.dir)
	if err != nil {
		return err
	}
	if d.dead, err = openDeadLog(d.dir, d.opts.Logger); err != nil {
		return err
	}
	d.processed, d.failures = st.Processed, st.Failures
	live := map[uint64]stateSegment{}
	for _, s := range st.Segments {
		live[s.Num] = s
	}
	nums, err := listSegments(d.dir)
	if err != nil {
		return fmt.Errorf("queue: list %s: %w", d.dir, err)
	}
	l := &segLog{dir: d.dir, maxSize: d.opts.SegmentSize, records: map[uint64]uint32{}, legacy: map[uint64]bool{},
		readers: map[uint64]*os.File{}, nextNum: st.LastSegment + 1}
	var entries []*diskEntry
	superseded := map[pos]bool{}
	present := map[uint64]bool{}
	for _, num := range nums {
		path := l.path(num)
		ss, known := live[num]
		if num <= st.LastSegment && !known {
			// Compacted: the state that dropped it was written, the removal was not.
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("queue: remove compacted segment: %w", err)
			}
			continue
		}
		present[num] = true
		seg := &segmentScan{path: path, count: ss.Records}
		seg.scan, err = recoverFile(path, segPrefixLen, func(r record) error {
			if seg.seen.has(r.index) {
				return nil // a second copy of a record cannot come from a write; keep the first
			}
			seg.seen.add(r.index)
			seg.count = max(seg.count, r.index+1)
			due, sup, _ := decodeSegPayload(r.payload)
			if sup.seg != 0 {
				superseded[sup] = true
			}
			entries = append(entries, &diskEntry{pos: pos{seg: num, idx: r.index}, off: r.off, size: r.size, due: due, at: time.Now().UnixMilli()})
			return nil
		})
		if err != nil {
			return err
		}
		set := settledFromRanges(ss.Settled, seg.count)
		d.reportDamage(seg, set)
		d.settled[num] = set
		l.records[num] = seg.count
		l.legacy[num] = seg.scan.legacy
		l.nextNum = max(l.nextNum, num+1)
	}
	d.reportMissing(st, present, l.nextNum-1)
	now := time.Now().UnixMilli()
	pending := 0
	for _, e := range entries {
		set := d.settled[e.pos.seg]
		if superseded[e.pos] {
			set.add(e.pos.idx) // its retry was stored; the state write was cut off
		}
		if set.has(e.pos.idx) {
			continue
		}
		pending++
		d.enqueueLocked(e, now)
	}
	d.log = l
	if pending > 0 {
		d.opts.Logger.Info().Int("events", pending).Msg("event queue reopened with unsettled events; delivering them again")
	}
	// Write the state once now: it drops segments that were settled before the restart
	// and proves the directory is writable before anyone publishes.
	d.stateGen = 1
	if err := d.saveState(1); err != nil {
		_ = l.close()
		return err
	}
	d.opened = true
	return nil
}

// inUseError is NewDisk's error for a directory another process holds: a configuration
// mistake, not a storage failure to wait out.
type inUseError string

func (e inUseError) Error() string { return string(e) }

func (d *Disk) enqueueLocked(e *diskEntry, now int64) {
	d.seq++
	e.seq = d.seq
	if e.due <= now {
		d.ready = append(d.ready, e)
	} else {
		heap.Push(&d.delayed, e)
	}
}

func (d *Disk) enqueue(e *diskEntry) {
	d.mu.Lock()
	d.enqueueLocked(e, time.Now().UnixMilli())
	d.mu.Unlock()
	d.wake()
}

func (d *Disk) wake() {
	select {
	case d.notify <- struct{}{}:
	default:
	}
}

// fail records an error after which the queue cannot keep its promises (the log after a
// failed fsync); Run stops with it. Storage errors that a retry can outlive are not fatal.
func (d *Disk) fail(err error) error {
	d.mu.Lock()
	if d.fatal == nil {
		d.fatal = err
	}
	d.mu.Unlock()
	d.wake()
	return err
}

// appendEvent stores e in the log for delivery at due (unix ms, 0 = now), in place of the
// record at supersedes (none when its segment is 0).
func (d *Disk) appendEvent(b []byte, due int64, supersedes pos) (*diskEntry, error) {
	p, off, size, err := d.log.appendRecord(encodeSegPayload(due, supersedes, b))
	if err != nil {
		if lerr := d.log.err(); lerr != nil && !errors.Is(lerr, ErrClosed) {
			return nil, d.fail(lerr)
		}
		if !errors.Is(err, ErrClosed) {
			d.logHealth.failed(err, "event queue: cannot write the event log; events are refused (webhooks answered 503) until it can")
			// The state write probes, with backoff, for the room to come back.
			d.retryStateLater()
		}
		return nil, err
	}
	d.logHealth.ok("event queue: the event log takes writes again")
	return &diskEntry{pos: p, off: off, size: size, due: due, at: time.Now().UnixMilli()}, nil
}

// Publish implements Queue: the event is fsynced before Publish returns; concurrent
// publishers share fsyncs.
func (d *Disk) Publish(ctx context.Context, e Event) error {
	if d.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, b, err := prepare(e, time.Now())
	if err != nil {
		return err
	}
	ent, err := d.appendEvent(b, 0, pos{})
	if err != nil {
		return fmt.Errorf("queue: publish %q: %w", e.ID, err)
	}
	d.enqueue(ent)
	return nil
}

// Run implements Queue.
func (d *Disk) Run(ctx context.Context, h Handler) error {
	if d.closed.Load() {
		return ErrClosed
	}
	d.runMu.Lock()
	if d.cancel != nil {
		d.runMu.Unlock()
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	d.cancel, d.done = cancel, done
	d.runMu.Unlock()
	defer func() {
		cancel()
		d.runMu.Lock()
		d.cancel, d.done = nil, nil
		d.runMu.Unlock()
		close(done)
	}()
	return run(ctx, d, h, d.opts.Options)
}

// Close implements Queue: it stops Run, syncs and closes the files and unlocks the
// directory.
func (d *Disk) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	close(d.closing)
	d.runMu.Lock()
	cancel, done := d.cancel, d.done
	d.runMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	// A last state write records settles still in memory and every segment's record
	// count, which lets the next open tell records lost to damage.
	d.mu.Lock()
	d.stateGen++
	gen := d.stateGen
	d.mu.Unlock()
	_ = d.saveState(gen)
	err := d.log.close()
	d.deadMu.Lock()
	if derr := d.dead.close(); err == nil {
		err = derr
	}
	d.deadMu.Unlock()
	if lerr := d.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

// Dead implements Queue.
func (d *Disk) Dead(_ context.Context, limit int) ([]Event, error) {
	d.deadMu.Lock()
	list := d.dead.list()
	d.deadMu.Unlock()
	if limit > 0 && len(list) > limit {
		list = list[:limit]
	}
	out := make([]Event, len(list))
	for i, e := range list {
		out[i] = e.Event
	}
	return out, nil
}

// Replay implements Queue: the event is appended to the log again (durable) before it
// leaves the dead-letter list, so a crash in between can only deliver it twice.
func (d *Disk) Replay(_ context.Context, id string) error {
	if d.closed.Load() {
		return ErrClosed
	}
	d.deadMu.Lock()
	defer d.deadMu.Unlock()
	de, ok := d.dead.events[id]
	if !ok {
		return ErrNotFound
	}
	e := de.Event
	e.Attempts = 0
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	ent, err := d.appendEvent(b, 0, pos{})
	if err != nil {
		return fmt.Errorf("queue: replay %q: %w", id, err)
	}
	d.enqueue(ent)
	if err := d.deadWritten(d.dead.remove(id)); err != nil {
		// The event is stored again and will be delivered; it also stays listed as dead.
		return fmt.Errorf("queue: replay %q: stored again, but still listed as dead: %w", id, err)
	}
	return nil
}

// deadWritten tracks the outcome of a write to the dead-letter list.
func (d *Disk) deadWritten(err error) error {
	if err != nil {
		d.deadHealth.failed(err, "event queue: cannot write the dead-letter list")
		return err
	}
	d.deadHealth.ok("event queue: the dead-letter list takes writes again")
	return nil
}

// Stats implements Queue.
func (d *Disk) Stats(context.Context) (Stats, error) {
	d.deadMu.Lock()
	dead := len(d.dead.events)
	d.deadMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Stats{
		Pending:   int64(len(d.ready)),
		Retrying:  int64(d.delayed.Len()),
		InFlight:  int64(len(d.inflight)),
		Dead:      int64(dead),
		Processed: d.processed,
		Failures:  d.failures,
	}
	// Retries already due count as pending.
	now := time.Now().UnixMilli()
	oldest := int64(0)
	older := func(e *diskEntry) {
		if oldest == 0 || e.at < oldest {
			oldest = e.at
		}
	}
	for _, e := range d.delayed {
		if e.due <= now {
			s.Pending++
			s.Retrying--
		}
	}
	for _, e := range d.ready {
		older(e)
	}
	for _, e := range d.inflight {
		older(e)
	}
	if oldest != 0 {
		s.OldestAt = time.UnixMilli(oldest)
	}
	return s, d.fatal
}

// Health is nil while the queue's files take writes, else the error of the latest failed
// write (a full or read-only data directory) or the failure that stopped the queue.
func (d *Disk) Health() error {
	d.mu.Lock()
	fatal := d.fatal
	d.mu.Unlock()
	if fatal != nil {
		return fatal
	}
	for _, h := range []*storeHealth{&d.logHealth, &d.stateHealth, &d.deadHealth} {
		if err := h.state(); err != nil {
			return err
		}
	}
	return nil
}

// feed delivers ready events one slot at a time.
func (d *Disk) feed(ctx context.Context, eng *engine) error {
	for {
		if eng.acquire(ctx, 1) == 0 {
			return nil
		}
		ent, err := d.next(ctx)
		if err != nil || ent == nil {
			eng.give(1)
			return err
		}
		payload, err := d.log.read(ent.pos, ent.off, ent.size)
		var e Event
		if err == nil {
			_, _, b := decodeSegPayload(payload)
			err = json.Unmarshal(b, &e)
		}
		if err != nil {
			eng.give(1)
			if berr := d.buryUnreadable(ent, err); berr != nil {
				d.requeueLater(ent, d.deadHealth.pause())
			}
			continue
		}
		eng.submit(&delivery{event: e, ref: ent})
	}
}

// next waits for an event that is due and marks it in flight; nil when ctx ends.
func (d *Disk) next(ctx context.Context) (*diskEntry, error) {
	for {
		d.mu.Lock()
		if d.fatal != nil {
			d.mu.Unlock()
			return nil, d.fatal
		}
		now := time.Now().UnixMilli()
		for d.delayed.Len() > 0 && d.delayed[0].due <= now {
			d.ready = append(d.ready, heap.Pop(&d.delayed).(*diskEntry))
		}
		if len(d.ready) > 0 {
			e := d.ready[0]
			d.ready[0] = nil
			d.ready = d.ready[1:]
			d.inflight[e.pos] = e
			d.mu.Unlock()
			return e, nil
		}
		var timer *time.Timer
		var tc <-chan time.Time
		if d.delayed.Len() > 0 {
			timer = time.NewTimer(time.Duration(d.delayed[0].due-now) * time.Millisecond)
			tc = timer.C
		}
		d.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-d.notify:
		case <-tc:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil, nil
		}
	}
}

// buryUnreadable keeps a record that no longer reads back (damaged on disk after it was
// written) visible in the dead-letter list instead of dropping it silently.
func (d *Disk) buryUnreadable(ent *diskEntry, cause error) error {
	id := fmt.Sprintf("disk:%d:%d", ent.pos.seg, ent.pos.idx)
	d.opts.Logger.Error().Err(cause).Str("record", id).Msg("stored event is not readable; moved to the dead-letter list")
	e := Event{ID: id, Kind: "unreadable", FirstSeen: time.Now().UTC(), LastError: "stored event is not readable: " + cause.Error()}
	return d.bury(context.Background(), &delivery{event: e, ref: ent}, e)
}

func (d *Disk) ack(_ context.Context, dl *delivery) error {
	return d.settle(dl.ref.(*diskEntry), true, false)
}

func (d *Disk) retry(_ context.Context, dl *delivery, next Event, at time.Time, failed bool) error {
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	old := dl.ref.(*diskEntry)
	ent, err := d.appendEvent(b, at.UnixMilli(), old.pos)
	if err != nil {
		return err
	}
	d.enqueue(ent)
	return d.settle(old, false, failed)
}

func (d *Disk) bury(_ context.Context, dl *delivery, dead Event) error {
	d.deadMu.Lock()
	err := d.dead.add(dead, time.Now().UnixMilli())
	d.deadMu.Unlock()
	if err := d.deadWritten(err); err != nil {
		return err
	}
	return d.settle(dl.ref.(*diskEntry), false, true)
}

// requeueLater delivers an unsettled event again after delay.
func (d *Disk) requeueLater(ent *diskEntry, delay time.Duration) {
	d.mu.Lock()
	delete(d.inflight, ent.pos)
	ent.due = time.Now().Add(delay).UnixMilli()
	d.enqueueLocked(ent, time.Now().UnixMilli())
	d.mu.Unlock()
	d.wake()
}

// release puts an unsettled event back at the head of the line.
func (d *Disk) release(dl *delivery) {
	ent := dl.ref.(*diskEntry)
	d.mu.Lock()
	delete(d.inflight, ent.pos)
	d.ready = slices.Insert(d.ready, 0, ent)
	d.mu.Unlock()
	d.wake()
}

// settle marks a record settled and returns once the state file says so, or, when the
// state cannot be written, once a retry of the write is scheduled: the settle holds in
// memory, and only a restart before the write succeeds delivers the event once more.
func (d *Disk) settle(ent *diskEntry, processed, failed bool) error {
	d.mu.Lock()
	delete(d.inflight, ent.pos)
	set := d.settled[ent.pos.seg]
	if set == nil {
		set = &settledSet{}
		d.settled[ent.pos.seg] = set
	}
	set.add(ent.pos.idx)
	if processed {
		d.processed++
	}
	if failed {
		d.failures++
	}
	d.stateGen++
	gen := d.stateGen
	d.mu.Unlock()
	err := d.saveState(gen)
	if err != nil && !d.isFatal() {
		d.retryStateLater()
		return nil
	}
	return err
}

func (d *Disk) isFatal() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fatal != nil
}

// retryStateLater writes the state again after a backoff until a write succeeds or the
// queue closes; one retrier at a time.
func (d *Disk) retryStateLater() {
	d.mu.Lock()
	if d.stateRetry || d.closed.Load() {
		d.mu.Unlock()
		return
	}
	d.stateRetry = true
	d.mu.Unlock()
	go func() {
		defer func() {
			d.mu.Lock()
			d.stateRetry = false
			d.mu.Unlock()
		}()
		for n := 1; ; n++ {
			pause(StoreBackoff(n), d.closing)
			if d.closed.Load() || d.isFatal() {
				return
			}
			// A new generation forces a write even with nothing new to settle: it is also
			// the probe that tells a directory with room again.
			d.mu.Lock()
			d.stateGen++
			gen := d.stateGen
			d.mu.Unlock()
			if d.saveState(gen) == nil {
				return
			}
		}
	}()
}

// saveState writes the state as of generation gen or later. Settles that arrive while a
// write is under way are covered by the next one, which a single waiter performs for all.
// Segments whose records are all settled are dropped from the state and deleted after it
// is written.
func (d *Disk) saveState(gen uint64) error {
	d.smu.Lock()
	defer d.smu.Unlock()
	if d.savedGen >= gen {
		return nil
	}
	records, last, active := d.log.snapshot()
	d.mu.Lock()
	if d.fatal != nil {
		d.mu.Unlock()
		return d.fatal
	}
	snapGen := d.stateGen
	st := stateFile{Version: 1, LastSegment: last, Processed: d.processed, Failures: d.failures, Segments: []stateSegment{}}
	var compact []uint64
	for num, n := range records {
		set := d.settled[num]
		var done uint32
		if set != nil {
			done = set.count
		}
		if num != active && done >= n {
			compact = append(compact, num)
			continue
		}
		var ranges [][2]uint32
		if set != nil {
			ranges = set.ranges()
		}
		st.Segments = append(st.Segments, stateSegment{Num: num, Settled: ranges, Records: n})
	}
	d.mu.Unlock()
	slices.SortFunc(st.Segments, func(a, b stateSegment) int { return cmp.Compare(a.Num, b.Num) })
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(d.dir, stateName), b); err != nil {
		err = fmt.Errorf("queue: write %s: %w", stateName, err)
		if d.opened {
			d.stateHealth.failed(err, "event queue: cannot write its state; settled events are kept in memory, and only a restart before a write succeeds delivers them once more")
		}
		return err
	}
	d.stateHealth.ok("event queue: its state is written again")
	d.logHealth.ok("event queue: the directory takes writes again")
	d.savedGen = snapGen
	for _, num := range compact {
		if err := d.log.remove(num); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.opts.Logger.Warn().Err(err).Uint64("segment", num).Msg("could not delete a settled log segment; it is deleted at the next start")
		}
		d.mu.Lock()
		delete(d.settled, num)
		d.mu.Unlock()
	}
	return nil
}

// entryHeap orders delayed events by due time, then by the order they were stored, so
// events parked behind a failed one keep their order.
type entryHeap []*diskEntry

func (h entryHeap) Len() int { return len(h) }
func (h entryHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].seq < h[j].seq
}
func (h entryHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)   { *h = append(*h, x.(*diskEntry)) }
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
