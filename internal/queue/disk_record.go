package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// A record on disk is an 8-byte header, payload length and CRC-32C of the payload (both
// little-endian uint32), then the payload. A crash can leave the last record of a file
// torn; the length and checksum find it, and opening truncates the file before it.

const (
	recordHeader = 8
	maxRecord    = maxEventSize + 64<<10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeRecord(payload []byte) []byte {
	b := make([]byte, recordHeader+len(payload))
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(payload, castagnoli))
	copy(b[recordHeader:], payload)
	return b
}

// decodeRecord checks one whole record read back from a known offset.
func decodeRecord(b []byte) ([]byte, error) {
	if len(b) < recordHeader {
		return nil, errors.New("short record")
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if int(n) != len(b)-recordHeader {
		return nil, fmt.Errorf("record length %d does not match its slot of %d bytes", n, len(b)-recordHeader)
	}
	p := b[recordHeader:]
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(b[4:8]) {
		return nil, errors.New("record checksum mismatch")
	}
	return p, nil
}

// scanRecords reads the records of f from the start and calls fn with each good one's
// offset, total size and payload. It stops at the first record that is incomplete or does
// not check out and returns the offset where the good records end with a description of
// the bad one (bad is "" at a clean end of file).
func scanRecords(f *os.File, minPayload int, fn func(off int64, size int, payload []byte) error) (good int64, bad string, err error) {
	r := bufio.NewReaderSize(f, 256<<10)
	var hdr [recordHeader]byte
	for {
		n, err := io.ReadFull(r, hdr[:])
		if err == io.EOF {
			return good, "", nil
		}
		if err == io.ErrUnexpectedEOF {
			return good, fmt.Sprintf("torn record header (%d of %d bytes)", n, recordHeader), nil
		}
		if err != nil {
			return good, "", err
		}
		size := binary.LittleEndian.Uint32(hdr[0:4])
		if int(size) < minPayload || size > maxRecord {
			return good, fmt.Sprintf("impossible record length %d", size), nil
		}
		payload := make([]byte, size)
		if n, err := io.ReadFull(r, payload); err == io.ErrUnexpectedEOF || err == io.EOF {
			return good, fmt.Sprintf("torn record (%d of %d bytes)", n, size), nil
		} else if err != nil {
			return good, "", err
		}
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(hdr[4:8]) {
			return good, "record checksum mismatch", nil
		}
		if err := fn(good, recordHeader+int(size), payload); err != nil {
			return good, "", err
		}
		good += recordHeader + int64(size)
	}
}

// recoverFile scans the file at path, truncates it after its last good record when the
// rest is torn or corrupt, and returns the good size.
func recoverFile(path string, minPayload int, logf func(bad string, good, size int64), fn func(off int64, size int, payload []byte) error) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	good, bad, err := scanRecords(f, minPayload, fn)
	if err != nil {
		return 0, fmt.Errorf("queue: read %s: %w", path, err)
	}
	if bad == "" {
		return good, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	logf(bad, good, fi.Size())
	if err := f.Truncate(good); err != nil {
		return 0, fmt.Errorf("queue: truncate the corrupt tail of %s: %w", path, err)
	}
	return good, f.Sync()
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
