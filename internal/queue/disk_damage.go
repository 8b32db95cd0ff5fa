package queue

import (
	"path/filepath"
)

// segmentScan is what opening found in one segment: the indexes of its good records and
// how many records it had as far as anything tells (the state written last, the highest
// index read).
type segmentScan struct {
	path  string
	scan  fileScan
	seen  settledSet
	count uint32
}

// reportDamage logs damage to a segment truthfully, in terms of events: lost records that
// were not settled are events that will never be delivered. It marks the lost records
// settled so that the segment can be compacted, and returns how many events were lost.
func (d *Disk) reportDamage(s *segmentScan, settled *settledSet) int {
	lost, lostEvents := 0, 0
	for i := range s.count {
		if s.seen.has(i) {
			continue
		}
		lost++
		if !settled.has(i) {
			lostEvents++
			settled.add(i)
		}
	}
	if len(s.scan.damaged) == 0 && lost == 0 {
		return 0
	}
	log := d.opts.Logger.With().Str("file", s.path).Str("problem", s.scan.damaged[0].problem).
		Int64("damaged_bytes", s.scan.damagedBytes()).Int("records_read", s.scan.records).Logger()
	_, tailOnly := s.scan.tail()
	tailOnly = tailOnly && len(s.scan.damaged) == 1
	switch {
	case lostEvents > 0:
		log.Error().Int("lost_events", lostEvents).
			Msg("event log segment is damaged: stored events that were not yet delivered are lost; every readable record is delivered")
	case lost > 0:
		log.Warn().Int("lost_records", lost).
			Msg("event log segment is damaged; only records of events already settled were hit, no pending event is lost")
	case tailOnly:
		log.Warn().Msg("event log segment ends in an incomplete or damaged record; truncating it. " +
			"A crash during a write leaves this, and that event was never acknowledged to its producer; " +
			"damage to the file would look the same and lose events stored since the queue state was last saved")
	default:
		log.Warn().Msg("event log segment has damaged bytes between records; every record was recovered")
	}
	return lostEvents
}

// reportMissing logs, by name, every segment that should exist and does not: one the
// state lists, or a gap among segments created after the state was written (segments are
// numbered in order, and only the state can retire one).
func (d *Disk) reportMissing(st stateFile, present map[uint64]bool, highest uint64) {
	missing := func(num uint64, pending int) {
		ev := d.opts.Logger.Error().Str("file", filepath.Join(d.dir, segName(num)))
		if pending >= 0 {
			ev = ev.Int("lost_events", pending)
		}
		ev.Msg("event log segment is missing: the events stored in it that were not yet delivered are lost")
	}
	for _, s := range st.Segments {
		if present[s.Num] {
			continue
		}
		pending := -1
		if s.Records > 0 {
			pending = int(s.Records - settledFromRanges(s.Settled, s.Records).count)
		}
		missing(s.Num, pending)
	}
	for num := st.LastSegment + 1; num < highest; num++ {
		if !present[num] {
			missing(num, -1)
		}
	}
}
