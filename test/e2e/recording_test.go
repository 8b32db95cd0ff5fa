package e2e

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
)

// withRecordings has crmlink serve the recordings the rig's dialplan makes (MixMonitor
// into Asterisk's recording directory), downloaded over ARI as from another host.
func withRecordings(t *testing.T) func(*config.Config) {
	return func(c *config.Config) {
		c.DataDir = t.TempDir()
		c.Recordings.Enabled, c.Recordings.Secret = true, "e2e-recordings-secret"
		c.Recordings.PublicURL = "http://" + c.HTTP.Listen
	}
}

// talkWithAudio answers the call and has both phones send audio for d (Asterisk records
// only audio that flows), then the manager hangs up.
func talkWithAudio(t *testing.T, in *siptest.IncomingCall, call *siptest.Call, caller, manager *siptest.Phone, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait+d)
	defer cancel()
	require.NoError(t, in.Answer(ctx))
	res, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs[0] = caller.SendTone(ctx, res.Msg.Body(), d) }()
	go func() { defer wg.Done(); errs[1] = manager.SendTone(ctx, in.Request().Body(), d) }()
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	hangupBoth(t, in, call)
}

// An answered call is recorded by the dialplan, whatever the wiring; its note links the
// recording, which plays: mp3 that a real decoder reads with the length of the talk, Range
// requests answered 206; a tampered or expired link or a traversal attempt gets nothing.
func TestRecordingOnTheNote(t *testing.T) {
	for _, w := range []struct {
		name, exten string
		tweak       []func(*config.Config)
	}{
		{"ARI", ariExten, nil},
		{"FastAGI", agiExten, []func(*config.Config){withObserver, withAGI}},
		{"SIP redirect", redirectExten, []func(*config.Config){withObserver, withRedirect}},
	} {
		t.Run(w.name, func(t *testing.T) { recordedCall(t, w.exten, w.tweak...) })
	}
}

func recordedCall(t *testing.T, exten string, tweak ...func(*config.Config)) {
	s := startStack(t, append([]func(*config.Config){withRecordings(t)}, tweak...)...)
	if s.app.Observer != nil {
		testrig.WaitFor(t, 10*time.Second, "the call observer connected", s.app.Observer.Connected)
	}
	anna := managerPhone(t, s.ast, "101")
	caller := newCaller(t, s.ast, annaClient)
	call := dial(t, s.ast, caller, exten)
	in := nextIncoming(t, anna, callWait)
	talkWithAudio(t, in, call, caller, anna, 3*time.Second)
	o := s.nextOutcome(t)
	require.True(t, o.Answered)

	c := waitCreated(t, s, "the call note", func(c sandbox.Created) bool { return len(c.Notes) > 0 })
	link := c.Notes[0].Params.Link
	require.True(t, strings.HasPrefix(link, s.api+"/v1/recordings/"+o.ID+".mp3?"), "the note links crmlink's recording: %q", link)

	resp, body := testrig.Get(t, link)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Equal(t, "audio/mpeg", resp.Header.Get("Content-Type"))
	mp3 := filepath.Join(t.TempDir(), "call.mp3")
	require.NoError(t, os.WriteFile(mp3, body, 0o600))
	d, err := testrig.ProbeDuration(mp3)
	require.NoError(t, err, "ffprobe reads the recording")
	t.Logf("talk %v, recording %v, %d bytes", o.TalkDuration, d, len(body))
	assert.InDelta(t, o.TalkDuration.Seconds(), d.Seconds(), 1, "the recording lasts the talk")

	resp, part := testrig.Get(t, link, "Range", "bytes=0-1023")
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, body[:1024], part)

	u, err := url.Parse(link)
	require.NoError(t, err)
	q := u.Query()
	sig := []byte(q.Get("sig"))
	sig[len(sig)-1] ^= 1
	q.Set("sig", string(sig))
	u.RawQuery = q.Encode()
	resp, _ = testrig.Get(t, u.String())
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a tampered signature")
	q = u.Query()
	q.Set("exp", "1")
	u.RawQuery = q.Encode()
	resp, _ = testrig.Get(t, u.String())
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "an expired link")
	for _, p := range []string{"/v1/recordings/../../etc/passwd", "/v1/recordings/..%2F..%2Fetc%2Fpasswd", "/v1/recordings/%2e%2e%2f%2e%2e%2fetc%2fpasswd.mp3"} {
		resp, body := testrig.Get(t, s.api+p)
		assert.Contains(t, []int{http.StatusNotFound, http.StatusBadRequest}, resp.StatusCode, "%s: %s", p, body)
		assert.NotContains(t, string(body), "root:")
	}
}

// A call whose recording cannot be had still gets its note, without a link.
func TestRecordingMissingNeverHoldsTheNote(t *testing.T) {
	s := startStack(t, withRecordings(t), func(c *config.Config) {
		c.Recordings.Name, c.Recordings.Wait = "not-recorded-{linkedid}", 500*time.Millisecond
	})
	anna := managerPhone(t, s.ast, "101")
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)
	talk(t, nextIncoming(t, anna, callWait), call)
	o := s.nextOutcome(t)
	c := waitCreated(t, s, "the call note", func(c sandbox.Created) bool { return len(c.Notes) > 0 })
	assert.Equal(t, o.ID, c.Notes[0].Params.Uniq)
	assert.Empty(t, c.Notes[0].Params.Link, "no recording: no link, and the note is written all the same")
}
