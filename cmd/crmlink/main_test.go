package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	misspelt := filepath.Join(dir, "bad.yaml")
	assert.NoError(t, os.WriteFile(misspelt, []byte("routing:\n  lookup_timeout: 1s\n  chek_manager_status: true\n"), 0o600))

	// The chat vendors' "why responsible sync does not work" list, in one file.
	chatErrors := filepath.Join(dir, "chat.yaml")
	assert.NoError(t, os.WriteFile(chatErrors, []byte(`amocrm:
  base_url: https://acme.amocrm.ru
  token: t
chat:
  platforms:
    - platform: wazzup
      company: wz-one
      webhook_secret: wazzup-secret-0123456789
    - platform: wazzup
      company: wz-two
      webhook_secret: wazzup-secret-0123456789
  users:
    - crm_user_id: 1001
      wazzup: u-ann
    - crm_user_id: 1002
      role: supervisor
      wazzup: u-ann
`), 0o600))

	cases := []cliCase{
		{"example accepted", []string{"check-config", "../../examples/crmlink.yaml"}, 0, "OK\n", nil},
		{"misspelt key named with its line", []string{"check-config", misspelt}, 1, "", []string{`line 3: unknown key "chek_manager_status"`, "check_manager_status"}},
		{"chat vendors' sync errors", []string{"check-config", chatErrors}, 1, "", []string{
			`chat.platforms[1].company: is "wz-two" while chat.platforms[0] already binds this CRM account to wazzup company "wz-one"`,
			`chat.users[1].wazzup: is "u-ann", the wazzup user already mapped to CRM user 1001 in chat.users[0]`,
			`chat.users[1].wazzup: is "u-ann", the wazzup user already given role manager in chat.users[0]; a chat user in two roles`,
		}},
		{"missing file", []string{"check-config", filepath.Join(dir, "none.yaml")}, 1, "", []string{"no such file"}},
		{"no argument", []string{"check-config"}, 2, "", []string{"usage"}},
		{"unknown command", []string{"frobnicate"}, 2, "", []string{`unknown command "frobnicate"`}},
		{"version", []string{"version"}, 0, "crmlink dev\n", nil},
	}
	runCLICases(t, cases)
}

// cliCase is one command line: its exit code, its whole stdout (when not empty) and
// lines its stderr must contain.
type cliCase struct {
	name     string
	args     []string
	code     int
	stdout   string
	stderrIn []string
}

func runCLICases(t *testing.T, cases []cliCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(c.args, &out, &errOut)
			assert.Equal(t, c.code, code, errOut.String())
			if c.stdout != "" {
				assert.Equal(t, c.stdout, out.String())
			}
			for _, s := range c.stderrIn {
				assert.Contains(t, errOut.String(), s)
			}
		})
	}
}
