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
