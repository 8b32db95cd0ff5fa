package recording

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// ARISource downloads recordings over Asterisk's REST interface (GET
// /ari/recordings/stored/{name}/file), so crmlink needs no file system shared with
// Asterisk: the dialplan's MixMonitor writes into Asterisk's recording directory
// (${ASTSPOOLDIR}/recording), which is where ARI's stored recordings are.
type ARISource struct {
	URL                string // "http://pbx:8088/ari"
	Username, Password string
	Client             *http.Client
}

// Open starts the download; ErrNotFound when Asterisk has no such recording.
func (s ARISource) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	u := strings.TrimRight(s.URL, "/") + "/recordings/stored/" + url.PathEscape(name) + "/file"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(s.Username, s.Password)
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ARI stored recording: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Body, nil
	case http.StatusNotFound:
		resp.Body.Close()
		return nil, ErrNotFound
	}
	resp.Body.Close()
	return nil, fmt.Errorf("ARI stored recording %s: %s", name, resp.Status)
}

// DirSource reads recordings from a directory shared with Asterisk (an NFS mount, or the
// same host): <Dir>/<name>.wav.
type DirSource struct{ Dir string }

// Open opens the file; ErrNotFound when it is not there.
func (s DirSource) Open(_ context.Context, name string) (io.ReadCloser, error) {
	if strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return nil, ErrNotFound
	}
	f, err := os.Open(filepath.Join(s.Dir, name+".wav"))
	if os.IsNotExist(err) {
		return nil, ErrNotFound
	}
	return f, err
}
