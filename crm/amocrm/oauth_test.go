package amocrm

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/testrig"
)

// oauthClient is a client of the sandbox's example integration with tokens in a fresh
// directory; tok, when not nil, is written there first. Logs go to the returned buffer.
func oauthClient(t *testing.T, url string, tok *tokens) (*Client, string, *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "amocrm-token.json")
	if tok != nil {
		require.NoError(t, writeTokens(file, *tok))
	}
	logs := &syncBuffer{}
	c := newClient(t, url, func(o *Options) {
		o.Token = ""
		o.OAuth = &OAuth{ClientID: "sandbox-client", ClientSecret: "sandbox-secret", RedirectURI: "https://crmlink.example/oauth", TokenFile: file}
		o.Logger = zerolog.New(logs).Level(zerolog.DebugLevel)
	})
	return c, file, logs
}

func readTokenFile(t *testing.T, file string) tokens {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var tok tokens
	require.NoError(t, json.Unmarshal(data, &tok))
	return tok
}

func stale(expiresIn time.Duration) *tokens {
	return &tokens{AccessToken: "stale-access", RefreshToken: "sandbox-refresh-1", ExpiresAt: time.Now().Add(expiresIn)}
}

func TestOAuthRefreshOn401AndPersist(t *testing.T) {
	sb, url := startSandbox(t)
	c, file, logs := oauthClient(t, url, stale(time.Hour))

	users, err := c.Users(context.Background())
	require.NoError(t, err)
	assert.Len(t, users, 3)
	assert.Equal(t, 2, sb.Requests("GET /api/v4/users"), "401, then the retry with the new token")
	assert.Equal(t, 1, sb.Requests("POST /oauth2/access_token"))

	first := readTokenFile(t, file)
	assert.NotEqual(t, "stale-access", first.AccessToken)
	assert.NotEqual(t, "sandbox-refresh-1", first.RefreshToken)
	assert.WithinDuration(t, time.Now().Add(24*time.Hour), first.ExpiresAt, time.Minute)
	st, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(file))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")

	// A day later the access token is dead; the refresh token saved above renews it.
	sb.ExpireTokens()
	_, err = c.Contact(context.Background(), 2001)
	require.NoError(t, err)
	second := readTokenFile(t, file)
	assert.NotEqual(t, first.RefreshToken, second.RefreshToken)
	assert.Equal(t, 2, sb.Requests("POST /oauth2/access_token"))

	for _, secret := range []string{first.AccessToken, first.RefreshToken, second.AccessToken, second.RefreshToken, "sandbox-refresh-1", "sandbox-secret"} {
		assert.NotContains(t, logs.String(), secret, "a token reached the log")
	}
	assert.Contains(t, logs.String(), "access token refreshed")
}

func TestOAuthConcurrent401sRefreshOnce(t *testing.T) {
	sb, url := startSandbox(t)
	c, _, _ := oauthClient(t, url, stale(time.Hour))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Company(context.Background(), 3001)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, sb.Requests("POST /oauth2/access_token"), "the old refresh token only works once")
}

func TestOAuthRefreshesBeforeExpiry(t *testing.T) {
	sb, url := startSandbox(t)
	c, _, _ := oauthClient(t, url, stale(time.Minute))
	_, err := c.Users(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, sb.Requests("POST /oauth2/access_token"))
	assert.Equal(t, 1, sb.Requests("GET /api/v4/users"), "no request went out with the expiring token")
}

func TestOAuthRefreshRefused(t *testing.T) {
	_, url := startSandbox(t)
	c, file, _ := oauthClient(t, url, &tokens{AccessToken: "stale-access", RefreshToken: "revoked-refresh", ExpiresAt: time.Now().Add(time.Hour)})
	_, err := c.Users(context.Background())
	require.ErrorIs(t, err, crm.ErrUnauthorized)
	msg := err.Error()
	assert.True(t, strings.HasPrefix(msg, "amocrm GET /api/v4/users: amocrm POST /oauth2/access_token: "), msg)
	for _, secret := range []string{"revoked-refresh", "stale-access", "sandbox-secret"} {
		assert.NotContains(t, msg, secret)
	}
	assert.Equal(t, "revoked-refresh", readTokenFile(t, file).RefreshToken, "the file is untouched")
}

func TestOAuthWithoutTokensThenExchangeCode(t *testing.T) {
	_, url := startSandbox(t)
	c, file, _ := oauthClient(t, url, nil)
	_, err := c.Users(context.Background())
	require.ErrorIs(t, err, crm.ErrUnauthorized)
	assert.Contains(t, err.Error(), "exchange an authorization code first")

	require.Error(t, c.ExchangeCode(context.Background(), "wrong-code"))
	require.NoError(t, c.ExchangeCode(context.Background(), "sandbox-code-1"))
	assert.NotEmpty(t, readTokenFile(t, file).RefreshToken)
	_, err = c.Users(context.Background())
	require.NoError(t, err)

	static := newClient(t, url, nil)
	assert.ErrorContains(t, static.ExchangeCode(context.Background(), "x"), "long-lived token")
}

func TestBadTokenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t.json")
	require.NoError(t, os.WriteFile(file, []byte("{"), 0o600))
	_, err := New(Options{BaseURL: "https://x.amocrm.ru", OAuth: &OAuth{ClientID: "a", ClientSecret: "b", RedirectURI: "c", TokenFile: file}})
	assert.ErrorContains(t, err, "is not valid JSON")
}

func TestOptionsValidation(t *testing.T) {
	oauth := &OAuth{ClientID: "a", ClientSecret: "b", RedirectURI: "c", TokenFile: filepath.Join(t.TempDir(), "t.json")}
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"no base URL", Options{Token: "t"}, "set it to the account address"},
		{"relative base URL", Options{BaseURL: "sub.amocrm.ru", Token: "t"}, "set it to the account address"},
		{"no credentials", Options{BaseURL: "https://x.amocrm.ru"}, "no credentials"},
		{"both credentials", Options{BaseURL: "https://x.amocrm.ru", Token: "t", OAuth: oauth}, "keep one of them"},
		{"oauth incomplete", Options{BaseURL: "https://x.amocrm.ru", OAuth: &OAuth{ClientID: "a"}}, "client secret, redirect URI, token file"},
		{"negative rate", Options{BaseURL: "https://x.amocrm.ru", Token: "t", RateLimit: -1}, "must not be negative"},
		{"negative rate margin", Options{BaseURL: "https://x.amocrm.ru", Token: "t", RateMargin: -time.Millisecond}, "must not be negative"},
		{"rate below one per hour", Options{BaseURL: "https://x.amocrm.ru", Token: "t", RateLimit: 1e-6}, "less than one per hour"},
		{"ok token", Options{BaseURL: "https://x.amocrm.ru/", Token: "t"}, ""},
		{"ok oauth, no file yet", Options{BaseURL: "http://127.0.0.1:8099", OAuth: oauth}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.o)
			if tc.want == "" {
				require.NoError(t, err)
				assert.Equal(t, DefaultRateLimit, c.limiter.n)
				assert.Equal(t, time.Second+DefaultRateMargin, c.limiter.window)
				assert.Equal(t, "RU", c.region)
				return
			}
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// syncBuffer is a log sink safe for the goroutines of the code under test.
type syncBuffer = testrig.LogBuffer
