// Package recording makes call recordings playable from amoCRM: it fetches a call's
// recording from Asterisk (ARI's stored recordings, or a directory shared with Asterisk),
// converts it to mp3 once (amoCRM's player plays mp3 only), keeps it under data_dir, and
// signs expiring links to it that crmlink serves (/v1/recordings/…).
package recording

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

var (
	// ErrNotFound: there is no recording of the call (not recorded, not answered, or gone).
	ErrNotFound = errors.New("recording not found")
	// ErrForbidden: the link's signature is wrong or the link has expired.
	ErrForbidden = errors.New("recording link: wrong signature or expired")
	// ErrBadName: the link names no call id crmlink could have signed (a traversal
	// attempt, an encoded slash, a stray character).
	ErrBadName = errors.New("recording link: not a call id")
)

// Source hands out a call's recording as Asterisk wrote it (WAV) by its name.
type Source interface {
	Open(ctx context.Context, name string) (io.ReadCloser, error)
}

// Options configure a Library.
type Options struct {
	Source Source
	// Name is the recording's name for a call, {linkedid} replaced by the call's id, as
	// the dialplan's MixMonitor names the file (without its extension).
	Name string
	// Cache is the directory the mp3 files are kept in.
	Cache string
	// Secret signs the links (HMAC-SHA256).
	Secret []byte
	// PublicURL is where managers' browsers reach crmlink ("https://crm-rec.example.com");
	// links are PublicURL + "/v1/recordings/<id>.mp3?exp=…&sig=…".
	PublicURL string
	// TTL is how long a link plays.
	TTL time.Duration
	// Wait bounds how long an answered call's recording may take to appear after the call
	// ended (Asterisk closes the file after the last channel's hangup).
	Wait time.Duration
	// FFmpeg is the converter's command (Debian's ffmpeg, with libmp3lame).
	FFmpeg string
	Logger zerolog.Logger
	// Now is the clock (tests); time.Now by default.
	Now func() time.Time
}

// Library is the recordings crmlink serves.
type Library struct {
	o  Options
	mu sync.Mutex
	// converting holds a lock per call id, so that one conversion runs per recording.
	converting map[string]*sync.Mutex
}

// New checks the options and makes the cache directory.
func New(o Options) (*Library, error) {
	switch {
	case o.Source == nil:
		return nil, errors.New("recording: no source")
	case len(o.Secret) == 0:
		return nil, errors.New("recording: no secret to sign links with")
	case o.Cache == "":
		return nil, errors.New("recording: no cache directory")
	}
	if o.Name == "" {
		o.Name = "crmlink-{linkedid}"
	}
	if o.FFmpeg == "" {
		o.FFmpeg = "ffmpeg"
	}
	if o.TTL <= 0 {
		o.TTL = 90 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	if err := os.MkdirAll(o.Cache, 0o750); err != nil {
		return nil, fmt.Errorf("recording: cache directory: %w", err)
	}
	return &Library{o: o, converting: map[string]*sync.Mutex{}}, nil
}

// validID is what a call id (an Asterisk linkedid, "1733311111.42") may look like; nothing
// else is ever looked up, so no path can leave the cache directory.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`)

// ValidID reports whether id can name a recording.
func ValidID(id string) bool { return len(id) <= 128 && validID.MatchString(id) }

// Link makes the call's recording ready (fetched and converted once) and returns its
// signed link; ErrNotFound when the call has no recording (after Wait).
func (l *Library) Link(ctx context.Context, id string) (string, error) {
	if !ValidID(id) {
		return "", fmt.Errorf("recording of %q: %w", id, ErrBadName)
	}
	if err := l.ensure(ctx, id); err != nil {
		return "", err
	}
	return l.URL(id), nil
}

// URL is the signed link to a call's recording, valid for TTL from now.
func (l *Library) URL(id string) string {
	exp := strconv.FormatInt(l.o.Now().Add(l.o.TTL).Unix(), 10)
	q := url.Values{"exp": {exp}, "sig": {l.sign(id, exp)}}
	return l.o.PublicURL + "/v1/recordings/" + id + ".mp3?" + q.Encode()
}

func (l *Library) sign(id, exp string) string {
	m := hmac.New(sha256.New, l.o.Secret)
	m.Write([]byte(id + "\n" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// Open checks a link (the file part "<id>.mp3", exp, sig) and opens the recording: the
// caller serves it (http.ServeContent: Range requests).
func (l *Library) Open(file, exp, sig string) (*os.File, error) {
	id, ok := strings.CutSuffix(file, ".mp3")
	if !ok || !ValidID(id) {
		return nil, ErrBadName
	}
	want := l.sign(id, exp)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return nil, ErrForbidden
	}
	until, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || l.o.Now().Unix() > until {
		return nil, ErrForbidden
	}
	f, err := os.Open(l.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

func (l *Library) path(id string) string { return filepath.Join(l.o.Cache, id+".mp3") }

// ensure fetches and converts the call's recording unless the mp3 is there already.
func (l *Library) ensure(ctx context.Context, id string) error {
	l.mu.Lock()
	lock := l.converting[id]
	if lock == nil {
		lock = &sync.Mutex{}
		l.converting[id] = lock
	}
	l.mu.Unlock()
	lock.Lock()
	defer func() {
		lock.Unlock()
		l.mu.Lock()
		delete(l.converting, id)
		l.mu.Unlock()
	}()
	if _, err := os.Stat(l.path(id)); err == nil {
		return nil
	}
	wav, err := l.fetch(ctx, id)
	if err != nil {
		return err
	}
	defer os.Remove(wav)
	return l.convert(ctx, id, wav)
}

// fetch copies the recording into a temporary file, waiting up to Wait for it to appear.
func (l *Library) fetch(ctx context.Context, id string) (string, error) {
	name := strings.ReplaceAll(l.o.Name, "{linkedid}", id)
	deadline := l.o.Now().Add(l.o.Wait)
	for {
		rc, err := l.o.Source.Open(ctx, name)
		if err == nil {
			defer rc.Close()
			tmp, err := os.CreateTemp(l.o.Cache, ".fetch-*.wav")
			if err != nil {
				return "", fmt.Errorf("recording %s: %w", name, err)
			}
			_, err = io.Copy(tmp, rc)
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(tmp.Name())
				return "", fmt.Errorf("recording %s: download: %w", name, err)
			}
			return tmp.Name(), nil
		}
		if !errors.Is(err, ErrNotFound) || !l.o.Now().Before(deadline) {
			return "", fmt.Errorf("recording %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("recording %s: %w", name, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// convert encodes the WAV as mp3 (mono, 22.05 kHz, 48 kbit/s: speech that every browser's
// mp3 decoder plays) into the cache, atomically.
func (l *Library) convert(ctx context.Context, id, wav string) error {
	out, err := os.CreateTemp(l.o.Cache, ".convert-*.mp3")
	if err != nil {
		return fmt.Errorf("recording %s: %w", id, err)
	}
	out.Close()
	defer os.Remove(out.Name())
	cmd := exec.CommandContext(ctx, l.o.FFmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-i", wav, "-ac", "1", "-ar", "22050", "-codec:a", "libmp3lame", "-b:a", "48k", "-f", "mp3", out.Name())
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("recording %s: convert to mp3 with %s: %w: %s", id, l.o.FFmpeg, err, strings.TrimSpace(string(msg)))
	}
	if err := os.Rename(out.Name(), l.path(id)); err != nil {
		return fmt.Errorf("recording %s: %w", id, err)
	}
	return nil
}
