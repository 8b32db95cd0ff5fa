package sandbox

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func grant(t *testing.T, url string, body map[string]string) answer {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	return call(t, context.Background(), http.MethodPost, url+"/oauth2/access_token", "", string(b))
}

func refreshBody(token string) map[string]string {
	return map[string]string{
		"client_id": "sandbox-client", "client_secret": "sandbox-secret", "grant_type": "refresh_token",
		"refresh_token": token, "redirect_uri": "https://crmlink.example/oauth",
	}
}

func TestOAuthRefresh(t *testing.T) {
	sb, ts := start(t)
	a := grant(t, ts.URL, refreshBody("sandbox-refresh-1"))
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	m := a.json(t)
	assert.Equal(t, "Bearer", m["token_type"])
	assert.EqualValues(t, 86400, m["expires_in"])
	access, refresh := m["access_token"].(string), m["refresh_token"].(string)
	require.NotEmpty(t, access)
	require.NotEqual(t, "sandbox-refresh-1", refresh)

	ok := call(t, context.Background(), http.MethodGet, ts.URL+"/api/v4/users", access, "")
	assert.Equal(t, http.StatusOK, ok.status)

	assert.Equal(t, http.StatusBadRequest, grant(t, ts.URL, refreshBody("sandbox-refresh-1")).status, "a refresh token works once")

	sb.ExpireTokens()
	assert.Equal(t, http.StatusUnauthorized, call(t, context.Background(), http.MethodGet, ts.URL+"/api/v4/users", access, "").status)
	assert.Equal(t, http.StatusOK, grant(t, ts.URL, refreshBody(refresh)).status)
	assert.Equal(t, 3, sb.Requests("POST /oauth2/access_token"))
}

func TestOAuthRejects(t *testing.T) {
	_, ts := start(t)
	code := func(c string) map[string]string {
		b := refreshBody("")
		b["grant_type"], b["code"] = "authorization_code", c
		return b
	}
	wrongClient := refreshBody("sandbox-refresh-1")
	wrongClient["client_secret"] = "guess"
	wrongRedirect := refreshBody("sandbox-refresh-1")
	wrongRedirect["redirect_uri"] = "https://elsewhere"
	badGrant := refreshBody("sandbox-refresh-1")
	badGrant["grant_type"] = "password"

	assert.Equal(t, http.StatusUnauthorized, grant(t, ts.URL, wrongClient).status)
	assert.Equal(t, http.StatusBadRequest, grant(t, ts.URL, wrongRedirect).status)
	assert.Equal(t, http.StatusBadRequest, grant(t, ts.URL, badGrant).status)
	assert.Equal(t, http.StatusBadRequest, grant(t, ts.URL, code("wrong")).status)
	assert.Equal(t, http.StatusOK, grant(t, ts.URL, code("sandbox-code-1")).status)
	assert.Equal(t, http.StatusBadRequest, grant(t, ts.URL, code("sandbox-code-1")).status, "a code works once")
	assert.Equal(t, http.StatusBadRequest, call(t, context.Background(), http.MethodPost, ts.URL+"/oauth2/access_token", "", "{").status)
	assert.Equal(t, http.StatusMethodNotAllowed, call(t, context.Background(), http.MethodGet, ts.URL+"/oauth2/access_token", "", "").status)
}
