package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/clicktocall"
)

// TestWidgetKeyPrintsTheKeyServeAccepts: the key printed is the one crmlink verifies for
// that manager, and nothing is printed without a secret.
func TestWidgetKeyPrintsTheKeyServeAccepts(t *testing.T) {
	const secret = "widget-key-test-secret-0123456789abcdef"
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	managers := "asterisk:\n  ari: {enabled: false}\nmanagers:\n  - crm_user: 1001\n    endpoints: [PJSIP/101]\n"
	withSecret := write("with.yaml", managers+"click_to_call:\n  key_secret: "+secret+"\n")
	without := write("without.yaml", managers)

	var out, errOut bytes.Buffer
	require.Equal(t, 0, run([]string{"widget-key", "--config", withSecret, "1001"}, &out, &errOut), errOut.String())
	key := strings.TrimSpace(out.String())
	manager, ok := clicktocall.VerifyKey(secret, key)
	assert.True(t, ok)
	assert.EqualValues(t, 1001, manager)
	assert.Empty(t, errOut.String())

	out.Reset()
	errOut.Reset()
	assert.Equal(t, 0, run([]string{"widget-key", "--config", withSecret, "1002"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "not under managers")

	out.Reset()
	errOut.Reset()
	assert.Equal(t, 1, run([]string{"widget-key", "--config", without, "1001"}, &out, &errOut))
	assert.Empty(t, out.String())
	assert.Contains(t, errOut.String(), "click_to_call.key_secret")

	assert.Equal(t, 2, run([]string{"widget-key", "--config", withSecret, "anna"}, &out, &errOut))
}
