package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What check-config (and serve, through the same Load) refuses about who can reach
// crmlink; each error names the key.
func TestExposureIsRefused(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want string // "" when valid
	}{
		{"http on all interfaces without a token", `http: {listen: "0.0.0.0:8080"}`,
			`http.listen: is "0.0.0.0:8080", reachable from other hosts, but neither http.token nor http.read_token is set`},
		{"http on an empty host without a token", `http: {listen: ":8080"}`, `http.listen: is ":8080", reachable`},
		{"http on a LAN address with a read token", `http: {listen: "10.0.0.2:8080", read_token: r-0123456789}`, ""},
		{"http on a LAN address with the admin token", `http: {listen: "10.0.0.2:8080", token: a-0123456789}`, ""},
		{"http on localhost without a token", `http: {listen: "localhost:8080"}`, ""},
		{"http on ::1 without a token", `http: {listen: "[::1]:8080"}`, ""},
		{"read token equal to the admin token", `http: {token: same-0123456789, read_token: same-0123456789}`,
			"http.read_token: is the same as http.token"},
		{"agi on all interfaces, loopback allowlist", `agi: {enabled: true, listen: "0.0.0.0:4573"}`,
			`agi.listen: is "0.0.0.0:4573", reachable from other hosts, but agi.allowed_networks lists only loopback`},
		{"agi on all interfaces, the PBX allowed", `agi: {enabled: true, listen: "0.0.0.0:4573", allowed_networks: [10.0.0.5/32]}`, ""},
		{"agi allows everyone", `agi: {enabled: true, listen: "0.0.0.0:4573", allowed_networks: [0.0.0.0/0]}`,
			`agi.allowed_networks[0]: is "0.0.0.0/0", which allows every address`},
		{"agi allows every IPv6 address", `agi: {enabled: true, allowed_networks: [127.0.0.0/8, "::/0"]}`,
			`agi.allowed_networks[1]: is "::/0", which allows every address`},
		{"agi network not CIDR", `agi: {enabled: true, allowed_networks: [10.0.0.5]}`,
			`agi.allowed_networks[0]: is "10.0.0.5"; allowed: a network in CIDR form`},
		{"agi disabled is not checked", `agi: {listen: "0.0.0.0:4573", allowed_networks: [0.0.0.0/0]}`, ""},
		{"sip on all interfaces, loopback allowlist", `sip_redirect: {enabled: true, listen: "0.0.0.0:5070"}`,
			`sip_redirect.listen: is "0.0.0.0:5070", reachable from other hosts, but sip_redirect.allowed_networks lists only loopback`},
		{"sip allows everyone", `sip_redirect: {enabled: true, allowed_networks: [0.0.0.0/0]}`,
			`sip_redirect.allowed_networks[0]: is "0.0.0.0/0", which allows every address`},
		{"sip loopback mapped in IPv6 is still loopback", `sip_redirect: {enabled: true, listen: "[::ffff:127.0.0.1]:5070"}`, ""},
		{"one phone under two managers", `managers:
  - {crm_user: 1, endpoints: [PJSIP/100, PJSIP/101]}
  - {crm_user: 2, endpoints: [PJSIP/102]}
  - {crm_user: 3, endpoints: [pjsip/101]}`,
			"managers[2].endpoints[0]: pjsip/101 is already managers[0].endpoints[1]"},
		{"the same phone twice under one manager", `managers: [{crm_user: 1, endpoints: [PJSIP/100, PJSIP/100]}]`,
			"managers[0].endpoints[1]: PJSIP/100 is already managers[0].endpoints[0]"},
		{"different trunks are different phones", `managers: [{crm_user: 1, endpoints: [PJSIP/100@a]}, {crm_user: 2, endpoints: [PJSIP/100@b]}]`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml))
			if c.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestWorldReadableFileWithSecretsWarns(t *testing.T) {
	write := func(t *testing.T, body string, mode os.FileMode) string {
		p := filepath.Join(t.TempDir(), "crmlink.yaml")
		require.NoError(t, os.WriteFile(p, []byte(body), mode))
		require.NoError(t, os.Chmod(p, mode)) // past the umask
		return p
	}
	secrets := "http: {token: admin-0123456789}\namocrm: {base_url: \"https://acme.amocrm.ru\", token: amo-secret}\n"
	t.Run("world-readable with secrets", func(t *testing.T) {
		p := write(t, secrets, 0o644)
		cfg, err := Load(p)
		require.NoError(t, err, "a warning, not an error")
		require.Len(t, cfg.Warnings(), 1)
		w := cfg.Warnings()[0]
		assert.Contains(t, w, p+" is readable by every user (mode 0644) and holds http.token, amocrm.token")
		assert.Contains(t, w, "CRMLINK_HTTP_TOKEN, CRMLINK_AMOCRM_TOKEN")
		assert.NotContains(t, w, "amo-secret")
	})
	t.Run("owner only", func(t *testing.T) {
		cfg, err := Load(write(t, secrets, 0o600))
		require.NoError(t, err)
		assert.Empty(t, cfg.Warnings())
	})
	t.Run("secrets from the environment only", func(t *testing.T) {
		t.Setenv("CRMLINK_HTTP_TOKEN", "from-env-0123456789")
		cfg, err := Load(write(t, "http: {listen: \"127.0.0.1:8080\"}\n", 0o644))
		require.NoError(t, err)
		assert.Equal(t, "from-env-0123456789", cfg.HTTP.Token)
		assert.Empty(t, cfg.Warnings())
	})
	t.Run("the sample ARI password is not a secret", func(t *testing.T) {
		cfg, err := Load(exampleFile(t))
		require.NoError(t, err)
		assert.Empty(t, cfg.Warnings(), "%v", cfg.Warnings())
	})
	t.Run("a chat platform's key", func(t *testing.T) {
		p := write(t, strings.Join([]string{"amocrm: {base_url: \"https://acme.amocrm.ru\", token: t}",
			"chat: {platforms: [{platform: jivo, company: j, webhook_secret: jivo-secret-0123456789abc}]}", ""}, "\n"), 0o604)
		cfg, err := Load(p)
		require.NoError(t, err)
		require.Len(t, cfg.Warnings(), 1)
		assert.Contains(t, cfg.Warnings()[0], "amocrm.token, chat.platforms[0].webhook_secret")
		assert.Contains(t, cfg.Warnings()[0], "CRMLINK_CHAT_JIVO_WEBHOOK_SECRET")
	})
}
