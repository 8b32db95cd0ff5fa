package recording

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
)

// countingSource counts downloads and has the recording appear only after `after` looks.
type countingSource struct {
	DirSource
	opens, after atomic.Int32
}

func (s *countingSource) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if s.after.Add(-1) >= 0 {
		return nil, ErrNotFound
	}
	s.opens.Add(1)
	return s.DirSource.Open(ctx, name)
}

func newLib(t *testing.T, src Source, wait time.Duration) *Library {
	t.Helper()
	lib, err := New(Options{Source: src, Cache: t.TempDir(), Secret: []byte("0123456789abcdef"), PublicURL: "https://rec.example.com", Wait: wait})
	require.NoError(t, err)
	return lib
}

// TestLinkConvertsOnce: a recording that appears a little after the call is waited for,
// converted once, and served from the cache afterwards; one that never appears is
// ErrNotFound once Wait has passed.
func TestLinkConvertsOnce(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, testrig.WriteTestWAV(filepath.Join(dir, "crmlink-1.2.wav"), time.Second))
	src := &countingSource{DirSource: DirSource{Dir: dir}}
	src.after.Store(2) // not there for the first two looks
	lib := newLib(t, src, 2*time.Second)
	for range 3 {
		link, err := lib.Link(context.Background(), "1.2")
		require.NoError(t, err)
		assert.Contains(t, link, "https://rec.example.com/v1/recordings/1.2.mp3?exp=")
	}
	assert.EqualValues(t, 1, src.opens.Load(), "fetched and converted once")

	begin := time.Now()
	_, err := lib.Link(context.Background(), "1.3")
	assert.True(t, errors.Is(err, ErrNotFound), "%v", err)
	assert.GreaterOrEqual(t, time.Since(begin), 2*time.Second, "waited for it")
	entries, err := os.ReadDir(lib.o.Cache)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")
}

func TestValidID(t *testing.T) {
	for id, ok := range map[string]bool{
		"1733311111.42": true, "abc-1_2": true, "": false, ".": false, "..": false, "../x": false, "a/b": false,
		`a\b`: false, ".hidden": false, "a..b": false, "a.": false, "a%2Fb": false, "a b": false,
	} {
		assert.Equal(t, ok, ValidID(id), "%q", id)
	}
	_, err := DirSource{Dir: t.TempDir()}.Open(context.Background(), "../etc/passwd")
	assert.ErrorIs(t, err, ErrNotFound)
}
