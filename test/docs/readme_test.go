// Package docs checks that what the README tells an administrator to copy is what the rig
// runs and the end-to-end tests call through.
package docs

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/config"
)

// codeBlocks returns the fenced code blocks of a Markdown text.
func codeBlocks(md string) []string {
	var blocks []string
	var cur []string
	in := false
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "```") {
			if in {
				blocks = append(blocks, strings.Join(cur, "\n"))
				cur = nil
			}
			in = !in
			continue
		}
		if in {
			cur = append(cur, l)
		}
	}
	return blocks
}

func normalise(line string) string { return strings.Join(strings.Fields(line), " ") }

func confLines(t *testing.T, files ...string) map[string]bool {
	t.Helper()
	lines := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile("../../asterisk-conf/" + f)
		require.NoError(t, err)
		for _, l := range strings.Split(string(data), "\n") {
			lines[normalise(l)] = true
		}
	}
	return lines
}

// Every dialplan and pjsip line the README shows stands in asterisk-conf/ as written.
func TestReadmeSnippetsAreTheRigConfig(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	conf := confLines(t, "extensions.conf", "pjsip.conf")
	checked := 0
	for _, block := range codeBlocks(string(readme)) {
		if !strings.Contains(block, "exten =>") && !strings.Contains(block, "type = ") {
			continue
		}
		for _, l := range strings.Split(block, "\n") {
			l = normalise(l)
			if l == "" || strings.HasPrefix(l, ";") {
				continue
			}
			assert.True(t, conf[l], "README line not in asterisk-conf: %q", l)
			checked++
		}
	}
	assert.Greater(t, checked, 30, "the README shows the ARI, FastAGI and SIP redirect wiring")
}

// Every crmlink YAML snippet the README shows (a block with a `chat:` section) is a valid
// configuration as written, with the secrets it says come from the environment.
func TestReadmeChatExamplesAreValidConfigurations(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	t.Setenv("CRMLINK_AMOCRM_TOKEN", "token-from-env")
	for _, p := range []string{"WAZZUP", "CHATAPP", "JIVO"} {
		t.Setenv("CRMLINK_CHAT_"+p+"_WEBHOOK_SECRET", "webhook-secret-from-env-0123")
	}
	// The secrets each platform takes: Wazzup an API key, ChatApp its account's password.
	t.Setenv("CRMLINK_CHAT_WAZZUP_API_KEY", "api-key-from-env")
	t.Setenv("CRMLINK_CHAT_CHATAPP_PASSWORD", "password-from-env")
	n := 0
	for _, b := range codeBlocks(string(data)) {
		if !strings.HasPrefix(b, "chat:") && !strings.Contains(b, "\nchat:") {
			continue
		}
		n++
		if !strings.Contains(b, "amocrm:") {
			b = "amocrm: {base_url: https://acme.amocrm.ru}\n" + b
		}
		_, err := config.Parse([]byte(b))
		assert.NoError(t, err, "README example:\n%s", b)
	}
	assert.GreaterOrEqual(t, n, 3, "one chat example per platform (Wazzup, ChatApp, Jivo)")
}
