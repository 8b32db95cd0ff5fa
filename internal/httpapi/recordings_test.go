package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/pbx/recording"
)

// TestRecordings: a call's recording at its signed link is mp3 that a real decoder reads
// with the call's length, Range requests get 206, and a tampered, expired or foreign link,
// a traversal attempt or an unknown call never gets a file.
func TestRecordings(t *testing.T) {
	shared := t.TempDir()
	const id = "1796427101.53"
	require.NoError(t, testrig.WriteTestWAV(filepath.Join(shared, "crmlink-"+id+".wav"), 3*time.Second))
	// A file outside the cache that a traversal would aim at.
	require.NoError(t, os.WriteFile(filepath.Join(shared, "secret.mp3"), []byte("not yours"), 0o600))
	now := time.Now()
	lib, err := recording.New(recording.Options{
		Source: recording.DirSource{Dir: shared}, Cache: filepath.Join(shared, "cache"), Secret: []byte("0123456789abcdef"),
		PublicURL: "https://rec.example.com/", TTL: time.Hour, Now: func() time.Time { return now },
	})
	require.NoError(t, err)
	link, err := lib.Link(t.Context(), id)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(link, "https://rec.example.com/v1/recordings/"+id+".mp3?"), link)

	mux := http.NewServeMux()
	mux.Handle("GET /v1/recordings/{file}", Recordings(lib, zerolog.Nop()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	u, err := url.Parse(link)
	require.NoError(t, err)
	local := srv.URL + u.RequestURI()

	resp, body := testrig.Get(t, local)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "audio/mpeg", resp.Header.Get("Content-Type"))
	mp3 := filepath.Join(t.TempDir(), "got.mp3")
	require.NoError(t, os.WriteFile(mp3, body, 0o600))
	d, err := testrig.ProbeDuration(mp3)
	require.NoError(t, err, "ffprobe reads the mp3")
	assert.InDelta(t, 3, d.Seconds(), 0.2, "the recording's length")

	resp, part := testrig.Get(t, local, "Range", "bytes=100-199")
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, body[100:200], part)

	q := u.Query()
	signed := func(file, exp, sig string) string {
		return srv.URL + "/v1/recordings/" + file + "?" + url.Values{"exp": {exp}, "sig": {sig}}.Encode()
	}
	tampered := []byte(q.Get("sig"))
	tampered[0] ^= 1
	for _, c := range []struct {
		name, target string
		want         []int
	}{
		{"tampered signature", signed(id+".mp3", q.Get("exp"), string(tampered)), []int{403}},
		{"no signature", srv.URL + "/v1/recordings/" + id + ".mp3", []int{403}},
		{"a later expiry under the same signature", signed(id+".mp3", q.Get("exp")+"0", q.Get("sig")), []int{403}},
		{"another call under this call's signature", signed("1796427101.54.mp3", q.Get("exp"), q.Get("sig")), []int{403}},
		{"not a recording's name", srv.URL + "/v1/recordings/x", []int{404}},
		{"a signed link to a call without a recording", srv.URL + strings.TrimPrefix(lib.URL("1796427101.99"), "https://rec.example.com"), []int{404}},
		{"traversal", srv.URL + "/v1/recordings/../secret.mp3", []int{404, 400}},
		{"encoded traversal", srv.URL + "/v1/recordings/..%2Fsecret.mp3", []int{404, 400}},
		{"encoded dots", srv.URL + "/v1/recordings/%2E%2E%2F%2E%2E%2Fsecret.mp3", []int{404, 400}},
		{"double-encoded", srv.URL + "/v1/recordings/%252e%252e%252fsecret.mp3", []int{404, 400}},
		{"backslash", srv.URL + "/v1/recordings/..%5Csecret.mp3", []int{404, 400}},
		{"hidden file", srv.URL + "/v1/recordings/.fetch.mp3", []int{404, 400}},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := testrig.Get(t, c.target)
			assert.Contains(t, c.want, resp.StatusCode, "%s", body)
			assert.NotContains(t, string(body), "not yours")
		})
	}

	// The same link an hour and a second later: expired.
	now = now.Add(time.Hour + time.Second)
	resp, _ = testrig.Get(t, local)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "expired")
}
