package chatapp_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge/chatapp"
	"github.com/crmlink/crmlink/chatbridge/sandbox"
)

// The pair is kept in data_dir, readable by its owner only: a restarted crmlink goes on
// with it instead of calling tokens.make again (ChatApp asks for exactly that), and a
// pair made for another account is not used.
func TestTokensKeptInDataDir(t *testing.T) {
	sb := sandbox.New(sandbox.Seed{ChatApp: sandbox.ChatAppSeed{Users: []sandbox.ChatAppUser{{ID: "7", Name: "Ann"}}}})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	store := chatapp.FileTokens{Path: filepath.Join(t.TempDir(), "chatapp-tokens.json")}
	client := func(appID string) *chatapp.Client {
		c, err := chatapp.New(chatapp.Options{APIURL: srv.URL, WebhookSecret: secret, Tokens: store,
			Credentials: chatapp.Credentials{Email: sandbox.DefaultChatAppEmail, Password: sandbox.DefaultChatAppPassword, AppID: appID}})
		require.NoError(t, err)
		return c
	}
	ctx := context.Background()

	_, err := client(sandbox.DefaultChatAppAppID).Users(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, sb.Requests("POST /v1/tokens"))
	info, err := os.Stat(store.Path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the token file is readable by its owner only")
	b, err := os.ReadFile(store.Path)
	require.NoError(t, err)
	assert.NotContains(t, string(b), sandbox.DefaultChatAppPassword, "the password is not stored")

	_, err = client(sandbox.DefaultChatAppAppID).Users(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, sb.Requests("POST /v1/tokens"), "a new process reuses the stored pair")

	_, err = client("app_other").Users(ctx)
	assert.ErrorIs(t, err, chatapp.ErrCredentials)
	assert.Equal(t, 2, sb.Requests("POST /v1/tokens"), "another account's pair is not used")
	ok, detail := client("app_other").Health()
	assert.True(t, ok, "a fresh client has not signed in yet: %s", detail)
}
