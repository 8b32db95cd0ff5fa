package queue

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/rs/zerolog"
)

// deadLog is the disk queue's dead-letter list: an append-only file of records
// {"op":"dead",...} and {"op":"replay",...}, rewritten without the replayed ones when they
// outnumber the live ones.
type deadLog struct {
	path    string
	f       *os.File
	events  map[string]deadEntry
	seq     int64
	garbage int
	next    uint32 // index of the next record appended
}

type deadEntry struct {
	Event Event `json:"event"`
	At    int64 `json:"at"` // unix ms it died
	seq   int64
}

type deadRecord struct {
	Op    string `json:"op"`
	ID    string `json:"id,omitempty"`
	Event *Event `json:"event,omitempty"`
	At    int64  `json:"at,omitempty"`
}

const deadName = "dead.log"

func openDeadLog(dir string, log zerolog.Logger) (*deadLog, error) {
	d := &deadLog{path: filepath.Join(dir, deadName), events: map[string]deadEntry{}}
	f, err := os.OpenFile(d.path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("queue: open %s: %w", d.path, err)
	}
	_ = f.Close()
	scan, err := recoverFile(d.path, 2, func(r record) error {
		var dr deadRecord
		if err := json.Unmarshal(r.payload, &dr); err != nil {
			return fmt.Errorf("queue: %s: unreadable record: %w", d.path, err)
		}
		d.apply(dr)
		d.next = max(d.next, r.index+1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(scan.damaged) > 0 {
		log.Warn().Str("file", d.path).Str("problem", scan.damaged[0].problem).Int64("damaged_bytes", scan.damagedBytes()).
			Int("records_read", scan.records).
			Msg("dead-letter log is damaged (a crash during a write leaves a torn last record); the records around the damage are kept. " +
				"A damaged record can drop an event from the list, or bring back one that was replayed")
	}
	if scan.legacy && scan.records > 0 {
		// Written before records carried a marker: rewritten so that appends match.
		return d, d.rewrite()
	}
	if d.f, err = os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND, 0o640); err != nil {
		return nil, fmt.Errorf("queue: open %s: %w", d.path, err)
	}
	return d, nil
}

func (d *deadLog) apply(r deadRecord) {
	switch r.Op {
	case "dead":
		if r.Event == nil {
			return
		}
		if _, ok := d.events[r.Event.ID]; ok {
			d.garbage++
		}
		d.seq++
		d.events[r.Event.ID] = deadEntry{Event: *r.Event, At: r.At, seq: d.seq}
	case "replay":
		if _, ok := d.events[r.ID]; ok {
			delete(d.events, r.ID)
			d.garbage += 2 // the dead record and this one
		}
	}
}

func (d *deadLog) write(r deadRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := d.f.Write(encodeRecord(d.next, b)); err != nil {
		return fmt.Errorf("queue: write %s: %w", d.path, err)
	}
	d.next++
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("queue: fsync %s: %w", d.path, err)
	}
	d.apply(r)
	return d.maybeRewrite()
}

func (d *deadLog) add(e Event, at int64) error {
	return d.write(deadRecord{Op: "dead", Event: &e, At: at})
}

func (d *deadLog) remove(id string) error {
	return d.write(deadRecord{Op: "replay", ID: id})
}

// list returns the dead events in the order they died.
func (d *deadLog) list() []deadEntry {
	out := make([]deadEntry, 0, len(d.events))
	for _, e := range d.events {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// maybeRewrite compacts the file once replayed records outnumber live ones.
func (d *deadLog) maybeRewrite() error {
	if d.garbage < 1024 || d.garbage < len(d.events) {
		return nil
	}
	return d.rewrite()
}

// rewrite replaces the file with the live dead events only.
func (d *deadLog) rewrite() error {
	var buf []byte
	var n uint32
	for _, e := range d.list() {
		ev := e.Event
		b, err := json.Marshal(deadRecord{Op: "dead", Event: &ev, At: e.At})
		if err != nil {
			return err
		}
		buf = append(buf, encodeRecord(n, b)...)
		n++
	}
	if err := writeFileAtomic(d.path, buf); err != nil {
		return fmt.Errorf("queue: rewrite %s: %w", d.path, err)
	}
	if d.f != nil {
		_ = d.f.Close()
	}
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("queue: reopen %s: %w", d.path, err)
	}
	d.f, d.garbage, d.next = f, 0, n
	return nil
}

func (d *deadLog) close() error {
	if d.f == nil {
		return nil
	}
	return d.f.Close()
}
