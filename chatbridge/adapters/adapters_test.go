package adapters_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/adapters"
	"github.com/crmlink/crmlink/chatbridge/sandbox"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/scenarios/scenariotest"
)

func config(apiURL string) chatbridge.Config {
	cfg := chatbridge.Defaults()
	cfg.Platforms = []chatbridge.PlatformConfig{
		{Platform: chatbridge.Wazzup, Company: "wz", Sync: true, APIURL: apiURL, APIKey: sandbox.DefaultWazzupAPIKey, WebhookSecret: "wazzup-secret-0123456789"},
		{Platform: chatbridge.ChatApp, Company: "ca", Sync: false, APIURL: apiURL, WebhookSecret: "chatapp-secret-0123456789"},
		{Platform: chatbridge.Jivo, Company: "jv", WebhookSecret: "jivo-secret-0123456789abc"},
	}
	cfg.Users = []chatbridge.UserConfig{
		{CRMUserID: 11, Wazzup: "u-ann", ChatApp: "7"},
		{CRMUserID: 12, Wazzup: "u-ghost"},
		{CRMUserID: 13, Wazzup: "u-bob"},
		{CRMUserID: 99, Jivo: "4410"},
	}
	return cfg
}

func TestBuild(t *testing.T) {
	sb := sandbox.New(sandbox.Seed{Wazzup: sandbox.WazzupSeed{Users: []sandbox.WazzupUser{{ID: "u-ann", Name: "Ann"}, {ID: "u-bob", Name: "Bob"}}}})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	cfg := config(srv.URL)
	require.Empty(t, cfg.Validate())

	set, err := adapters.Build(cfg, adapters.Options{})
	require.NoError(t, err)
	assert.Len(t, set.Inbound, 3)
	require.Len(t, set.Synced, 1, "only wazzup has sync: true")
	assert.Equal(t, chatbridge.Wazzup, set.Synced[0].Name())
	assert.Len(t, set.SyncOptions(), 1)

	// Every reader authenticates with its platform's secret.
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/jivo/jivo-secret-0123456789abc", strings.NewReader(`{"event_name": "chat_updated"}`))
	_, err = set.Inbound[chatbridge.Jivo].ParseWebhook(r)
	assert.NoError(t, err)
	r = httptest.NewRequest(http.MethodPost, "/v1/chat/wazzup", strings.NewReader(`{"test": true}`))
	r.Header.Set("Authorization", "Bearer wazzup-secret-0123456789")
	_, err = set.Inbound[chatbridge.Wazzup].ParseWebhook(r)
	assert.NoError(t, err)

	// check-config: employees missing on one side.
	fake := scenariotest.New()
	fake.SetUsers(crm.User{ID: 11, Name: "Ann", Active: true}, crm.User{ID: 12, Name: "Gus", Active: false}, crm.User{ID: 99, Name: "Jo", Active: true})
	problems, err := chatbridge.VerifyUsers(context.Background(), cfg, fake, set.Synced...)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"chat.users[1].crm_user_id: is 12 (Gus), a deactivated CRM user; the CRM will not take them as responsible",
		`chat.users[1].wazzup: is "u-ghost", not a user of the wazzup account; add the employee to wazzup or fix the id`,
		"chat.users[2].crm_user_id: is 13, not a user of the CRM account; add the employee to the CRM or fix the id",
	}, problems)

	fake.FailRead = func(scenariotest.Op) error { return scenariotest.ErrInjected }
	_, err = chatbridge.VerifyUsers(context.Background(), cfg, fake, set.Synced...)
	assert.ErrorIs(t, err, crm.ErrUnavailable)
}

func TestBuildRefuses(t *testing.T) {
	cfg := config("http://sandbox.invalid")
	cfg.Platforms[2].WebhookSecret = ""
	_, err := adapters.Build(cfg, adapters.Options{})
	assert.ErrorContains(t, err, "chat.platforms[2]")
	cfg = config("not a url")
	_, err = adapters.Build(cfg, adapters.Options{})
	assert.ErrorContains(t, err, "chat.platforms[0]")
	cfg = config("http://sandbox.invalid")
	cfg.Platforms = append(cfg.Platforms, cfg.Platforms[2])
	_, err = adapters.Build(cfg, adapters.Options{})
	assert.ErrorContains(t, err, "configured twice")
}
