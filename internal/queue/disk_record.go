package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

// A record on disk is a 16-byte header, then the payload:
//
//	marker  recordMarker: where a record starts, so that a reader meeting damage can find
//	        the next record instead of giving up on the rest of the file
//	length  uint32, the payload's length
//	index   uint32, the record's number in its file: the settle state names records by
//	        number, so records found after damage keep their identity
//	crc     CRC-32C of length, index and payload
//
// (integers little-endian). A crash can leave the last record of a file torn; damage can
// hit any record. Reading skips what does not check out and resynchronises on the next
// marker. Files written before the marker existed (legacy: length and CRC of the payload,
// 8 bytes) are still read, up to their first bad record.

const (
	recordHeader = 16
	legacyHeader = 8
	maxRecord    = maxEventSize + 64<<10
)

// recordMarker never occurs in JSON (0xFE and 0xFF are not UTF-8), and as a legacy length
// it would be far above maxRecord, so a file's first bytes tell its format.
var recordMarker = [4]byte{0xFE, 0x71, 0xC3, 0xFF}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func recordCRC(hdr, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(hdr[4:12], castagnoli), castagnoli, payload)
}

func encodeRecord(index uint32, payload []byte) []byte {
	b := make([]byte, recordHeader+len(payload))
	copy(b, recordMarker[:])
	binary.LittleEndian.PutUint32(b[4:8], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[8:12], index)
	copy(b[recordHeader:], payload)
	binary.LittleEndian.PutUint32(b[12:16], recordCRC(b, b[recordHeader:]))
	return b
}

// parseRecord checks the record starting at b[0]; problem says what is wrong with it.
func parseRecord(b []byte, minPayload int) (size int, index uint32, payload []byte, problem string) {
	if len(b) < recordHeader {
		return 0, 0, nil, fmt.Sprintf("torn record header (%d of %d bytes)", len(b), recordHeader)
	}
	if !bytes.Equal(b[:4], recordMarker[:]) {
		return 0, 0, nil, "no record marker"
	}
	n := binary.LittleEndian.Uint32(b[4:8])
	if int64(n) < int64(minPayload) || n > maxRecord {
		return 0, 0, nil, fmt.Sprintf("impossible record length %d", n)
	}
	if len(b)-recordHeader < int(n) {
		return 0, 0, nil, fmt.Sprintf("torn record (%d of %d bytes)", len(b)-recordHeader, n)
	}
	payload = b[recordHeader : recordHeader+int(n)]
	if recordCRC(b, payload) != binary.LittleEndian.Uint32(b[12:16]) {
		return 0, 0, nil, "record checksum mismatch"
	}
	return recordHeader + int(n), binary.LittleEndian.Uint32(b[8:12]), payload, ""
}

// parseLegacyRecord checks a record of a file written before the marker existed.
func parseLegacyRecord(b []byte, minPayload int) (size int, payload []byte, problem string) {
	if len(b) < legacyHeader {
		return 0, nil, fmt.Sprintf("torn record header (%d of %d bytes)", len(b), legacyHeader)
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if int64(n) < int64(minPayload) || n > maxRecord {
		return 0, nil, fmt.Sprintf("impossible record length %d", n)
	}
	if len(b)-legacyHeader < int(n) {
		return 0, nil, fmt.Sprintf("torn record (%d of %d bytes)", len(b)-legacyHeader, n)
	}
	payload = b[legacyHeader : legacyHeader+int(n)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:8]) {
		return 0, nil, "record checksum mismatch"
	}
	return legacyHeader + int(n), payload, ""
}

// decodeRecord checks one whole record read back from a known offset and returns its
// index and payload.
func decodeRecord(b []byte, legacy bool) (uint32, []byte, error) {
	var (
		size    int
		index   uint32
		payload []byte
		problem string
	)
	if legacy {
		size, payload, problem = parseLegacyRecord(b, 0)
	} else {
		size, index, payload, problem = parseRecord(b, 0)
	}
	if problem == "" && size != len(b) {
		problem = fmt.Sprintf("record of %d bytes does not match its slot of %d bytes", size, len(b))
	}
	if problem != "" {
		return 0, nil, errors.New(problem)
	}
	return index, payload, nil
}

// record is one good record found by scanRecords.
type record struct {
	off     int64
	size    int
	index   uint32
	payload []byte
}

// damage is a byte range of a file that holds no good record.
type damage struct {
	off, end int64
	problem  string // what was wrong where the range starts
}

// fileScan is what scanning a file found.
type fileScan struct {
	legacy  bool
	size    int64
	records int
	damaged []damage
}

// tail is the damage that runs to the end of the file, if any.
func (s fileScan) tail() (damage, bool) {
	if n := len(s.damaged); n > 0 && s.damaged[n-1].end == s.size {
		return s.damaged[n-1], true
	}
	return damage{}, false
}

func (s fileScan) damagedBytes() int64 {
	var n int64
	for _, d := range s.damaged {
		n += d.end - d.off
	}
	return n
}

// scanRecords calls fn with every good record of b in file order. After a bad record it
// resumes at the next marker that starts a good record; a legacy file ends at its first
// bad record.
func scanRecords(b []byte, minPayload int, fn func(record) error) (fileScan, error) {
	s := fileScan{size: int64(len(b)), legacy: len(b) >= 4 && !bytes.Equal(b[:4], recordMarker[:])}
	off := 0
	for off < len(b) {
		var r record
		var problem string
		if s.legacy {
			r.size, r.payload, problem = parseLegacyRecord(b[off:], minPayload)
			r.index = uint32(s.records)
		} else {
			r.size, r.index, r.payload, problem = parseRecord(b[off:], minPayload)
		}
		if problem != "" {
			next := len(b)
			if !s.legacy {
				next = resync(b, off+1, minPayload)
			}
			s.damaged = append(s.damaged, damage{off: int64(off), end: int64(next), problem: problem})
			off = next
			continue
		}
		r.off = int64(off)
		if err := fn(r); err != nil {
			return s, err
		}
		s.records++
		off += r.size
	}
	return s, nil
}

// resync returns the offset of the first good record at or after from; len(b) if none.
func resync(b []byte, from, minPayload int) int {
	for from < len(b) {
		i := bytes.Index(b[from:], recordMarker[:])
		if i < 0 {
			return len(b)
		}
		at := from + i
		if _, _, _, problem := parseRecord(b[at:], minPayload); problem == "" {
			return at
		}
		from = at + 1
	}
	return len(b)
}

// recoverFile scans the file at path and truncates damage that runs to its end (a torn
// last record), so that appends start on a clean edge.
func recoverFile(path string, minPayload int, fn func(record) error) (fileScan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return fileScan{}, fmt.Errorf("queue: read %s: %w", path, err)
	}
	s, err := scanRecords(b, minPayload, fn)
	if err != nil {
		return s, fmt.Errorf("queue: read %s: %w", path, err)
	}
	tail, ok := s.tail()
	if !ok {
		return s, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return s, fmt.Errorf("queue: truncate the damaged end of %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Truncate(tail.off); err != nil {
		return s, fmt.Errorf("queue: truncate the damaged end of %s: %w", path, err)
	}
	return s, f.Sync()
}

// syncDir makes a file creation, rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writeFileAtomic replaces path with data so that a crash leaves either the old or the new
// content, never a mix.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}
