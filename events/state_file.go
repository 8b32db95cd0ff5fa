package events

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// FileState is the State of a single crmlink instance without Redis: a MemoryState whose
// every change is appended to a journal and fsynced before it is acknowledged, so that the
// ids of created entities and the callback-task windows survive a restart (the event
// queue redelivers unfinished outcomes, and they must not create anything twice). The
// journal is compacted, dropping expired entries, each time the state is opened.
type FileState struct {
	mem  *MemoryState
	path string

	mu sync.Mutex
	f  *os.File
}

// journalRecord is one line of the journal: a key's value, or a phone's task window.
type journalRecord struct {
	Key     string    `json:"k,omitempty"`
	Value   []byte    `json:"v,omitempty"`
	Phone   crm.Phone `json:"p,omitempty"`
	Until   time.Time `json:"u,omitempty"`
	Expires time.Time `json:"e"`
	// Claimant is who recorded a task window; Drop removes the phone's window (released).
	Claimant string `json:"c,omitempty"`
	Drop     bool   `json:"d,omitempty"`
}

// OpenFileState opens (or creates) the journal at path.
func OpenFileState(path string) (*FileState, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("rules state: %w", err)
	}
	s := &FileState{mem: NewMemoryState(), path: path}
	if err := s.load(); err != nil {
		return nil, err
	}
	if err := s.compact(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("rules state: %w", err)
	}
	s.f = f
	return s, nil
}

// load replays the journal; a torn last line (a crash mid-write) is ignored.
func (s *FileState) load() error {
	f, err := os.Open(s.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rules state: %w", err)
	}
	defer f.Close()
	now := time.Now()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var r journalRecord
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		if r.Drop {
			delete(s.mem.tasks, r.Phone)
			continue
		}
		if !now.Before(r.Expires) {
			continue
		}
		if r.Key != "" {
			s.mem.keys[r.Key] = memEntry{value: r.Value, expires: r.Expires}
		} else if r.Phone != "" {
			s.mem.tasks[r.Phone] = memTask{until: r.Until, expires: r.Expires, claimant: r.Claimant}
		}
	}
	return sc.Err()
}

// compact rewrites the journal with the live entries only (temp file, fsync, rename).
func (s *FileState) compact() error {
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("rules state: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for k, e := range s.mem.keys {
		_ = enc.Encode(journalRecord{Key: k, Value: e.value, Expires: e.expires})
	}
	for p, t := range s.mem.tasks {
		_ = enc.Encode(journalRecord{Phone: p, Until: t.until, Expires: t.expires, Claimant: t.claimant})
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("rules state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("rules state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("rules state: %w", err)
	}
	return os.Rename(tmp, s.path)
}

func (s *FileState) append(r journalRecord) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("rules state: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("rules state: %w", err)
	}
	return nil
}

// Close closes the journal.
func (s *FileState) Close() error { return s.f.Close() }

// Done implements State.
func (s *FileState) Done(ctx context.Context, key string) (bool, error) { return s.mem.Done(ctx, key) }

// MarkDone implements State.
func (s *FileState) MarkDone(ctx context.Context, key string, ttl time.Duration) error {
	return s.Save(ctx, key, nil, ttl)
}

// Save implements State: journaled before it is applied.
func (s *FileState) Save(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.append(journalRecord{Key: key, Value: value, Expires: s.mem.now().Add(ttl)}); err != nil {
		return err
	}
	return s.mem.Save(ctx, key, value, ttl)
}

// Load implements State.
func (s *FileState) Load(ctx context.Context, key string) ([]byte, bool, error) {
	return s.mem.Load(ctx, key)
}

// TaskUntil implements State.
func (s *FileState) TaskUntil(ctx context.Context, phone crm.Phone) (time.Time, error) {
	return s.mem.TaskUntil(ctx, phone)
}

// ClaimTask implements State: the claim is journaled before it is applied.
func (s *FileState) ClaimTask(ctx context.Context, phone crm.Phone, claimant string, now, until time.Time, ttl time.Duration) (time.Time, error) {
	s.mem.mu.Lock()
	defer s.mem.mu.Unlock()
	if held := s.mem.heldBy(phone, claimant, now); !held.IsZero() {
		return held, nil
	}
	expires := s.mem.now().Add(ttl)
	if err := s.append(journalRecord{Phone: phone, Until: until, Expires: expires, Claimant: claimant}); err != nil {
		return time.Time{}, err
	}
	s.mem.tasks[phone] = memTask{until: until, expires: expires, claimant: claimant}
	return time.Time{}, nil
}

// ReleaseTask implements State.
func (s *FileState) ReleaseTask(ctx context.Context, phone crm.Phone, claimant string) error {
	s.mem.mu.Lock()
	defer s.mem.mu.Unlock()
	if t, ok := s.mem.tasks[phone]; !ok || t.claimant != claimant {
		return nil
	}
	if err := s.append(journalRecord{Phone: phone, Drop: true, Expires: s.mem.now()}); err != nil {
		return err
	}
	delete(s.mem.tasks, phone)
	return nil
}

var _ State = (*FileState)(nil)
