package main

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	chatsandbox "github.com/crmlink/crmlink/chatbridge/sandbox"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
)

func TestCheckConfigOnlineAsksTheAccounts(t *testing.T) {
	inactive := false
	amo := sandbox.New(sandbox.Seed{Token: "tok", Users: []sandbox.User{
		{ID: 7, Name: "Anna"}, {ID: 8, Name: "Boris"}, {ID: 9, Name: "Gone", Active: &inactive},
	}})
	amoSrv := httptest.NewServer(amo)
	t.Cleanup(amoSrv.Close)
	t.Cleanup(amo.Close)
	chats := chatsandbox.New(chatsandbox.Seed{Wazzup: chatsandbox.WazzupSeed{
		Users: []chatsandbox.WazzupUser{{ID: "wz-anna", Name: "Anna"}, {ID: "wz-boris", Name: "Boris"}},
	}})
	chatSrv := httptest.NewServer(chats)
	t.Cleanup(chatSrv.Close)

	write := func(name, token string, managers, users string) string {
		p := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf(`amocrm: {base_url: %q, token: %q}
managers: %s
chat:
  platforms:
    - {platform: wazzup, sync: true, api_url: %q, api_key: %q, webhook_secret: wazzup-secret-0123456789}
  users: %s
`, amoSrv.URL, token, managers, chatSrv.URL, chatsandbox.DefaultWazzupAPIKey, users)), 0o600))
		return p
	}
	good := write("good.yaml", "tok", `[{crm_user: 7, endpoints: [PJSIP/101]}]`,
		`[{crm_user_id: 7, wazzup: wz-anna}, {crm_user_id: 8, wazzup: wz-boris}]`)
	bad := write("bad.yaml", "tok", `[{crm_user: 7, endpoints: [PJSIP/101]}, {crm_user: 99, endpoints: [PJSIP/102]}]`,
		`[{crm_user_id: 9, wazzup: wz-anna2}, {crm_user_id: 12, wazzup: wz-ghost}]`)
	refused := write("refused.yaml", "wrong-token", `[]`, `[]`)

	runCLICases(t, []cliCase{
		{"everyone exists", []string{"check-config", "--online", good}, 0, "OK (asked amoCRM: 3 users, wazzup users)\n", nil},
		{"offline check does not ask", []string{"check-config", bad}, 0, "OK\n", nil},
		{"missing and deactivated users named by key", []string{"check-config", "--online", bad}, 1, "", []string{
			"5 problem(s) found online",
			"managers[1].crm_user: is 99, not a user of the amoCRM account",
			"chat.users[0].crm_user_id: is 9 (Gone), a deactivated CRM user",
			`chat.users[0].wazzup: is "wz-anna2", not a user of the wazzup account`,
			"chat.users[1].crm_user_id: is 12, not a user of the CRM account",
			`chat.users[1].wazzup: is "wz-ghost", not a user of the wazzup account`,
		}},
		{"a refused token", []string{"check-config", "--online", refused}, 1, "", []string{"the online check could not finish", "amocrm.token"}},
	})
}

func TestCheckConfigOnlineSignsInToChatApp(t *testing.T) {
	amo := sandbox.New(sandbox.Seed{Token: "tok", Users: []sandbox.User{{ID: 7, Name: "Anna"}}})
	amoSrv := httptest.NewServer(amo)
	t.Cleanup(amoSrv.Close)
	t.Cleanup(amo.Close)
	chats := chatsandbox.New(chatsandbox.Seed{ChatApp: chatsandbox.ChatAppSeed{Users: []chatsandbox.ChatAppUser{{ID: "70", Name: "Anna"}}}})
	chatSrv := httptest.NewServer(chats)
	t.Cleanup(chatSrv.Close)

	write := func(name, password string) string {
		p := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf(`amocrm: {base_url: %q, token: tok}
chat:
  platforms:
    - platform: chatapp
      sync: true
      api_url: %q
      email: %q
      app_id: %q
      password: %q
      webhook_secret: chatapp-secret-0123456789
      licenses: [{id: "5501", messenger: grWhatsApp}]
  users: [{crm_user_id: 7, chatapp: "70"}]
`, amoSrv.URL, chatSrv.URL, chatsandbox.DefaultChatAppEmail, chatsandbox.DefaultChatAppAppID, password)), 0o600))
		return p
	}
	runCLICases(t, []cliCase{
		{"credentials ChatApp takes", []string{"check-config", "--online", write("good.yaml", chatsandbox.DefaultChatAppPassword)}, 0,
			"OK (asked amoCRM: 1 users, chatapp users)\n", nil},
		{"a revoked password named by key", []string{"check-config", "--online", write("revoked.yaml", "old-password")}, 1, "", []string{
			"1 problem(s) found online",
			"chat.platforms[0].password: ChatApp refused the email, password or app_id",
		}},
	})
}
