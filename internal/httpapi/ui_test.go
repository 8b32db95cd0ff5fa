package httpapi

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeDashboard serves a state holding a client's name; changes signals a change.
type fakeDashboard struct{ changes chan struct{} }

func (f *fakeDashboard) State(context.Context) any {
	return map[string]any{"calls": []map[string]string{{"caller": "84951000001", "contact": "Secret Client"}}}
}

func (f *fakeDashboard) Subscribe() (<-chan struct{}, func()) { return f.changes, func() {} }

func uiServer(t *testing.T) (*Server, *fakeDashboard) {
	s, _ := newServer(t, Tokens{Admin: "admin-secret", Read: "viewer-secret"})
	d := &fakeDashboard{changes: make(chan struct{}, 1)}
	s.HandleUI(d)
	s.Handle("POST /v1/queue/dead/replay", Admin, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]int{"replayed": 0})
	}))
	return s, d
}

func cookie(token string) string { return uiCookie + "=" + token }

func TestLivePageLeaksNothingWithoutAToken(t *testing.T) {
	s, _ := uiServer(t)
	for _, c := range []struct{ name, cookie string }{{"no cookie", ""}, {"wrong token", cookie("guess")}} {
		t.Run(c.name, func(t *testing.T) {
			page := do(t, s, "GET", "/ui/", "", "Cookie", c.cookie)
			assert.Equal(t, http.StatusOK, page.Code)
			assert.Contains(t, page.Body.String(), `action="/ui/login"`, "the login form")
			assert.NotContains(t, page.Body.String(), "page.js", "no page script before the login")
			for _, path := range []string{"/ui/api/state", "/ui/api/events"} {
				rec := do(t, s, "GET", path, "", "Cookie", c.cookie)
				assert.Equal(t, http.StatusUnauthorized, rec.Code, path)
				assert.NotContains(t, rec.Body.String(), "Secret Client", path)
			}
		})
	}
	wrong := do(t, s, "POST", "/ui/login", url.Values{"token": {"guess"}}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	assert.Contains(t, wrong.Body.String(), `id="login-error"`)
	assert.Empty(t, wrong.Result().Cookies(), "no cookie for a wrong token")
}

func TestLivePageLoginAndRoles(t *testing.T) {
	s, _ := uiServer(t)
	for _, c := range []struct {
		token, role string
		replay      int
	}{{"viewer-secret", "viewer", http.StatusForbidden}, {"admin-secret", "admin", http.StatusOK}} {
		t.Run(c.role, func(t *testing.T) {
			login := do(t, s, "POST", "/ui/login", url.Values{"token": {c.token}}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
			require.Equal(t, http.StatusSeeOther, login.Code)
			cs := login.Result().Cookies()
			require.Len(t, cs, 1)
			assert.True(t, cs[0].HttpOnly)
			assert.Equal(t, http.SameSiteStrictMode, cs[0].SameSite)
			jar := cs[0].Name + "=" + cs[0].Value

			page := do(t, s, "GET", "/ui/", "", "Cookie", jar)
			assert.Contains(t, page.Body.String(), `data-role="`+c.role+`"`)
			assert.Equal(t, c.role == "admin", strings.Contains(page.Body.String(), `id="replay"`), "only the admin sees the replay button")
			assert.Contains(t, page.Header().Get("Content-Security-Policy"), "default-src 'self'")

			state := do(t, s, "GET", "/ui/api/state", "", "Cookie", jar)
			assert.Equal(t, http.StatusOK, state.Code)
			assert.Contains(t, state.Body.String(), "Secret Client")

			assert.Equal(t, c.replay, do(t, s, "POST", "/v1/queue/dead/replay", "", "Cookie", jar, uiHeader, "1").Code)
			// A cross-site form cannot set the header: the cookie alone changes nothing.
			assert.Equal(t, http.StatusForbidden, do(t, s, "POST", "/v1/queue/dead/replay", "", "Cookie", jar).Code)
		})
	}
}

func TestLivePageStreamsEveryChange(t *testing.T) {
	s, d := uiServer(t)
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/ui/api/events", nil)
	req.Header.Set("Cookie", cookie("viewer-secret"))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	lines := bufio.NewScanner(res.Body)
	next := func() string {
		for lines.Scan() {
			if l := lines.Text(); strings.HasPrefix(l, "data: ") {
				return l
			}
		}
		return ""
	}
	assert.Contains(t, next(), "Secret Client", "the state at once")
	start := time.Now()
	d.changes <- struct{}{}
	assert.Contains(t, next(), "Secret Client", "again after a change")
	assert.Less(t, time.Since(start), uiRefresh, "sent for the change, not the refresh")
}
