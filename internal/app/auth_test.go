package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/clicktocall"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/httpapi"
)

const (
	adminToken = "admin-token-0123456789"
	readToken  = "read-token-0123456789"
)

// everythingConfig turns on every part that registers HTTP routes: the CRM (queue,
// webhooks) and all chat platforms. Nothing is contacted while the API is only built.
// callKeySecret derives the click-to-call keys of everythingConfig.
const callKeySecret = "auth-test-click-to-call-secret-0123456789"

func everythingConfig(t *testing.T) *config.Config {
	cfg := config.Default()
	cfg.HTTP.Token, cfg.HTTP.ReadToken = adminToken, readToken
	cfg.DataDir = t.TempDir()
	cfg.Asterisk.ARI.Enabled = false
	cfg.AmoCRM.BaseURL, cfg.AmoCRM.Token, cfg.AmoCRM.WebhookSecret = "http://127.0.0.1:9", "amo-token", "amo-hook-secret-0123456789"
	cfg.Managers = []config.Manager{{CRMUser: 1001, Name: "Ann", Endpoints: []string{"PJSIP/101"}}}
	cfg.Chat.CRMUserID = 900
	cfg.Chat.Platforms = []chatbridge.PlatformConfig{
		{Platform: chatbridge.Wazzup, Company: "wz", Sync: true, APIURL: "http://127.0.0.1:9", APIKey: "wazzup-key", WebhookSecret: "wazzup-crm-key-0123456789"},
		{Platform: chatbridge.ChatApp, Company: "ca", Sync: true, APIURL: "http://127.0.0.1:9", Email: "ops@example.com", AppID: "app-1", Password: "chatapp-password", WebhookSecret: "chatapp-secret-0123456789",
			Licenses: []chatbridge.License{{ID: "5501", Messenger: "grWhatsApp"}}},
		{Platform: chatbridge.Jivo, Company: "jv", WebhookSecret: "jivo-secret-0123456789abc"},
	}
	cfg.Chat.Users = []chatbridge.UserConfig{{CRMUserID: 1001, Name: "Ann", Wazzup: "wz-ann", ChatApp: "7", Jivo: "j-ann"}}
	cfg.Recordings.Enabled, cfg.Recordings.PublicURL, cfg.Recordings.Secret = true, "https://rec.example.com", "recordings-secret-0123456789"
	cfg.Recordings.Source, cfg.Recordings.Dir = "dir", t.TempDir()
	cfg.ClickToCall.Enabled, cfg.ClickToCall.KeySecret = true, callKeySecret
	cfg.ClickToCall.AllowedOrigins = []string{"https://example.amocrm.ru"}
	return cfg
}

// TestEveryRouteNeedsItsToken walks every route the API serve builds registers, so a new
// endpoint is covered (and fails here) the moment it is added: only /healthz and /metrics
// may be open, webhooks must refuse our bearer tokens without their own secret, reads
// take either token, changes only the admin one.
func TestEveryRouteNeedsItsToken(t *testing.T) {
	cfg := everythingConfig(t)
	require.Empty(t, cfg.Validate())
	p, err := New(cfg, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(p.Close)

	// CORS preflights carry no credentials (the Fetch standard) and tell only what the
	// browser may send. The live page's shell, login and script hold no data
	// (TestLivePageLeaksNothingWithoutAToken).
	open := map[string]bool{"GET /healthz": true, "GET /metrics": true, "OPTIONS /v1/calls": true, "OPTIONS /v1/calls/{id}": true,
		"GET /ui/{$}": true, "POST /ui/login": true, "POST /ui/logout": true, "GET /ui/assets/": true}
	type want struct{ none, read, admin, wrong int }
	const reached = 0 // the handler ran: anything but 401 and 403
	byAccess := map[httpapi.Access]want{
		httpapi.Open:    {reached, reached, reached, reached},
		httpapi.Webhook: {401, 401, 401, 401},
		httpapi.Read:    {401, reached, reached, 401},
		httpapi.Admin:   {401, 403, reached, 401},
		// A signed link's signature is its credential: our tokens do not open it.
		httpapi.Signed:  {403, 403, 403, 403},
		httpapi.CallKey: {401, 403, reached, 401},
	}
	routes := p.API.Routes()
	require.GreaterOrEqual(t, len(routes), 12, "every part is on: %v", routes)
	for _, r := range routes {
		if r.Access == httpapi.Open {
			assert.True(t, open[r.Pattern], "%s is open to anyone who reaches the port; register it as Read, Admin or Webhook", r.Pattern)
		}
		w := byAccess[r.Access]
		method, path, _ := strings.Cut(r.Pattern, " ")
		// Path wildcards get a guess: a webhook's secret is then wrong.
		path = regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(path, "1001")
		if r.Access == httpapi.Signed {
			path += ".mp3" // a recording's name: what is refused is the signature
		}
		for _, c := range []struct {
			name, header string
			code         int
		}{
			{"no token", "", w.none},
			{"read token", "Bearer " + readToken, w.read},
			{"admin token", "Bearer " + adminToken, w.admin},
			{"wrong token", "Bearer " + adminToken + "x", w.wrong},
		} {
			// A stream (the live page's events) ends when its client goes.
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(""))
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			rec := httptest.NewRecorder()
			p.API.ServeHTTP(rec, req)
			if c.code == reached {
				assert.NotContains(t, []int{401, 403}, rec.Code, "%s with %s: %s", r.Pattern, c.name, rec.Body)
			} else {
				assert.Equal(t, c.code, rec.Code, "%s with %s: %s", r.Pattern, c.name, rec.Body)
			}
		}
	}
	var patterns []string
	for _, r := range routes {
		patterns = append(patterns, r.Pattern+" "+r.Access.String())
	}
	// The endpoints of issue 11 are where they belong.
	for _, must := range []string{"GET /v1/route read", "GET /v1/chat-access read", "GET /v1/queue/dead read",
		"GET /v1/managers/{id}/availability read", "PUT /v1/managers/{id}/availability admin",
		"POST /v1/queue/dead/{id}/replay admin", "POST /v1/chat/reassign admin", "GET /v1/recordings/{file} signed",
		"POST /v1/calls call_key", "GET /v1/calls/{id} call_key", "GET /ui/api/state read", "GET /ui/api/events read"} {
		assert.Contains(t, patterns, must)
	}
}

// TestNoTokenConfiguredClosesTheAPI: a configuration without tokens never leaves a
// protected endpoint open, and the answer names the key to set.
func TestNoTokenConfiguredClosesTheAPI(t *testing.T) {
	cfg := everythingConfig(t)
	cfg.HTTP.Token, cfg.HTTP.ReadToken = "", ""
	p, err := New(cfg, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(p.Close)
	for _, r := range p.API.Routes() {
		if r.Access != httpapi.Read && r.Access != httpapi.Admin {
			continue
		}
		method, path, _ := strings.Cut(r.Pattern, " ")
		path = regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(path, "1001")
		if r.Access == httpapi.Signed {
			path += ".mp3" // a recording's name: what is refused is the signature
		}
		for _, header := range []string{"", "Bearer ", "Bearer anything"} {
			req := httptest.NewRequest(method, path, nil)
			req.Header.Set("Authorization", header)
			rec := httptest.NewRecorder()
			p.API.ServeHTTP(rec, req)
			assert.Equal(t, http.StatusForbidden, rec.Code, r.Pattern)
			assert.Contains(t, rec.Body.String(), "http.token", r.Pattern)
		}
	}
}

// TestClickToCallKeysAndCORS: a manager's click-to-call key places calls for that manager
// only and reads only their calls; the widget's origin gets CORS answers (refusals
// included, so the page can show why), other origins none.
func TestClickToCallKeysAndCORS(t *testing.T) {
	cfg := everythingConfig(t)
	p, err := New(cfg, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(p.Close)
	serve := func(method, path, auth, origin, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		rec := httptest.NewRecorder()
		p.API.ServeHTTP(rec, req)
		return rec
	}
	annsKey := clicktocall.Key(callKeySecret, 1001)
	const click = `{"manager": 1001, "phone": "+74951000001"}`
	for _, tc := range []struct {
		name, auth, body string
		code             int
	}{
		// Asterisk is not connected here: a call that passes every check is refused 503.
		{"the manager's key", annsKey, click, http.StatusServiceUnavailable},
		{"the admin token", adminToken, click, http.StatusServiceUnavailable},
		{"the manager id as a string", annsKey, `{"manager": "1001", "phone": "+74951000001"}`, http.StatusServiceUnavailable},
		{"another manager's key", clicktocall.Key(callKeySecret, 1002), click, http.StatusForbidden},
		{"a key of another secret", clicktocall.Key(callKeySecret+"!", 1001), click, http.StatusUnauthorized},
		{"the read token", readToken, click, http.StatusForbidden},
		{"a key without its manager", strings.SplitN(annsKey, ".", 2)[1], click, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(http.MethodPost, "/v1/calls", tc.auth, "", tc.body)
			assert.Equal(t, tc.code, rec.Code, rec.Body.String())
		})
	}
	widget := "https://example.amocrm.ru"
	pre := serve(http.MethodOptions, "/v1/calls", "", widget, "")
	assert.Equal(t, http.StatusNoContent, pre.Code)
	assert.Equal(t, widget, pre.Header().Get("Access-Control-Allow-Origin"))
	assert.Contains(t, pre.Header().Get("Access-Control-Allow-Headers"), "Authorization")
	refused := serve(http.MethodPost, "/v1/calls", "", widget, click)
	assert.Equal(t, http.StatusUnauthorized, refused.Code)
	assert.Equal(t, widget, refused.Header().Get("Access-Control-Allow-Origin"), "the page can read why it was refused")
	other := serve(http.MethodOptions, "/v1/calls", "", "https://evil.example", "")
	assert.Empty(t, other.Header().Get("Access-Control-Allow-Origin"))
}
