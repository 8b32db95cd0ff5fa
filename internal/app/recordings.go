package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/crmlink/crmlink/pbx/recording"
	"github.com/crmlink/crmlink/routing"
)

// newRecordings builds the recordings crmlink serves when recordings.enabled is on.
func (p *App) newRecordings() (*recording.Library, error) {
	rc := p.cfg.Recordings
	if !rc.Enabled {
		return nil, nil
	}
	var src recording.Source = recording.DirSource{Dir: rc.Dir}
	if rc.Source == "ari" {
		a := p.cfg.Asterisk.ARI
		src = recording.ARISource{URL: a.URL, Username: a.Username, Password: a.Password, Client: &http.Client{Timeout: time.Minute}}
	}
	if _, err := exec.LookPath(rc.FFmpeg); err != nil {
		p.log.Warn().Str("ffmpeg", rc.FFmpeg).Msg("recordings: the mp3 converter is not installed (apt-get install ffmpeg): call notes will carry no recording link")
	}
	lib, err := recording.New(recording.Options{
		Source: src, Name: rc.Name, Cache: filepath.Join(p.cfg.DataDir, "recordings"), Secret: []byte(rc.Secret),
		PublicURL: rc.PublicURL, TTL: rc.LinkTTL, Wait: rc.Wait, FFmpeg: rc.FFmpeg, Logger: p.log,
	})
	if err != nil {
		return nil, fmt.Errorf("recordings: %w", err)
	}
	return lib, nil
}

// recordingLinker is what puts the recording link on a call's outcome before its notes
// are written: crmlink's own signed link (recordings.enabled), or the recording_url
// template, or nothing.
func (p *App) recordingLinker() func(context.Context, routing.CallOutcome) string {
	lib, tmpl := p.recordings, p.cfg.RecordingURL
	switch {
	case lib != nil:
		return func(ctx context.Context, o routing.CallOutcome) string {
			if !o.Answered {
				return ""
			}
			link, err := lib.Link(ctx, o.ID)
			if err != nil {
				// The note goes out without the link: a missing recording never holds it.
				ev := p.log.Warn()
				if errors.Is(err, recording.ErrNotFound) {
					ev = p.log.Info()
				}
				ev.Err(err).Str("linkedid", o.ID).Msg("answered call without a recording link on its note")
				return ""
			}
			return link
		}
	case tmpl != "":
		return func(_ context.Context, o routing.CallOutcome) string {
			return strings.ReplaceAll(tmpl, "{linkedid}", o.ID)
		}
	}
	return nil
}
