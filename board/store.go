package board

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmlink/crmlink/crm"
)

// keepDays is how long a day's figures are kept (the page shows today; a week is room
// for an operator to look at the store).
const keepDays = 8

// FileStore keeps each day's tallies in data_dir, one JSON line per tally appended to
// <dir>/<day>.jsonl: a crash loses at most the line being written. One instance only.
type FileStore struct {
	dir  string
	mu   sync.Mutex
	days map[string]*Day // read from the file on first use
}

// NewFileStore keeps days under dir, created on the first write (a data_dir that cannot
// be written loses the figures, never starts crmlink without routing).
func NewFileStore(dir string) *FileStore {
	return &FileStore{dir: dir, days: map[string]*Day{}}
}

func (s *FileStore) path(day string) string { return filepath.Join(s.dir, day+".jsonl") }

// line is one stored tally.
type line struct {
	Counts   []lineCount `json:"c,omitempty"`
	AnswerMS int64       `json:"a,omitempty"`
	Answerer crm.UserID  `json:"by,omitempty"`
}

type lineCount struct {
	Manager crm.UserID `json:"m"`
	Field   string     `json:"f"`
	N       int64      `json:"n"`
}

// load returns the day, reading its file the first time (locked).
func (s *FileStore) load(day string) (*Day, error) {
	if d := s.days[day]; d != nil {
		return d, nil
	}
	d := newDay()
	f, err := os.Open(s.path(day))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l line
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue // a line torn by a crash
			}
			d.add(l.tally())
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	s.forgetOld(day)
	s.days[day] = d
	return d, nil
}

// forgetOld drops other days from memory and days past keepDays from the disk (locked).
func (s *FileStore) forgetOld(today string) {
	for k := range s.days {
		if k != today {
			delete(s.days, k)
		}
	}
	t, err := time.Parse(time.DateOnly, today)
	if err != nil {
		return
	}
	old, _ := filepath.Glob(filepath.Join(s.dir, "*.jsonl"))
	for _, p := range old {
		if d, err := time.Parse(time.DateOnly, strings.TrimSuffix(filepath.Base(p), ".jsonl")); err == nil && t.Sub(d) > keepDays*24*time.Hour {
			_ = os.Remove(p)
		}
	}
}

func (l line) tally() Tally {
	t := Tally{Answer: time.Duration(l.AnswerMS) * time.Millisecond, Answerer: l.Answerer}
	for _, c := range l.Counts {
		t.Counts = append(t.Counts, Count(c))
	}
	return t
}

// Add implements Store.
func (s *FileStore) Add(_ context.Context, day string, t Tally) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.load(day)
	if err != nil {
		return err
	}
	l := line{AnswerMS: t.Answer.Milliseconds(), Answerer: t.Answerer}
	for _, c := range t.Counts {
		l.Counts = append(l.Counts, lineCount(c))
	}
	b, _ := json.Marshal(l)
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return fmt.Errorf("board store: %w", err)
	}
	f, err := os.OpenFile(s.path(day), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	d.add(t)
	return nil
}

// Day implements Store.
func (s *FileStore) Day(_ context.Context, day string) (*Day, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.load(day)
	if err != nil {
		return nil, err
	}
	cp := newDay()
	for m, c := range d.Counts {
		cp.Counts[m] = map[string]int64{}
		for k, n := range c {
			cp.Counts[m][k] = n
		}
	}
	for m, a := range d.AnswerMS {
		cp.AnswerMS[m] = append([]int64(nil), a...)
	}
	return cp, nil
}

// RedisStore keeps the days in Redis, shared by every instance: a hash of counters per day
// (field "<manager>/<counter>") and a list of answer times per manager and day.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// DefaultRedisPrefix starts the board's keys.
const DefaultRedisPrefix = "crmlink:board:"

// NewRedisStore keeps days under prefix.
func NewRedisStore(rdb redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{rdb: rdb, prefix: prefix}
}

// The keys of one day share a hash tag, so that a Cluster keeps them on one node.
func (s *RedisStore) countsKey(day string) string { return s.prefix + "{" + day + "}" }
func (s *RedisStore) answersKey(day string, m crm.UserID) string {
	return s.prefix + "{" + day + "}:answer:" + strconv.FormatInt(int64(m), 10)
}

// Add implements Store.
func (s *RedisStore) Add(ctx context.Context, day string, t Tally) error {
	ttl := keepDays * 24 * time.Hour
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		k := s.countsKey(day)
		for _, c := range t.Counts {
			p.HIncrBy(ctx, k, strconv.FormatInt(int64(c.Manager), 10)+"/"+c.Field, c.N)
		}
		p.Expire(ctx, k, ttl)
		if t.Answerer != 0 {
			a := s.answersKey(day, t.Answerer)
			p.RPush(ctx, a, t.Answer.Milliseconds())
			p.Expire(ctx, a, ttl)
		}
		return nil
	})
	return err
}

// Day implements Store.
func (s *RedisStore) Day(ctx context.Context, day string) (*Day, error) {
	all, err := s.rdb.HGetAll(ctx, s.countsKey(day)).Result()
	if err != nil {
		return nil, err
	}
	d := newDay()
	for k, v := range all {
		ms, field, ok := strings.Cut(k, "/")
		m, err1 := strconv.ParseInt(ms, 10, 64)
		n, err2 := strconv.ParseInt(v, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		if d.Counts[crm.UserID(m)] == nil {
			d.Counts[crm.UserID(m)] = map[string]int64{}
		}
		d.Counts[crm.UserID(m)][field] = n
	}
	for m, c := range d.Counts {
		if c[FieldAnswered] == 0 {
			continue
		}
		vals, err := s.rdb.LRange(ctx, s.answersKey(day, m), 0, -1).Result()
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				d.AnswerMS[m] = append(d.AnswerMS[m], n)
			}
		}
	}
	return d, nil
}
