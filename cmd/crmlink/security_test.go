package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 11's exposures: check-config and serve refuse the same file with the same lines,
// each naming the key; a world-readable file holding a secret is a warning only.
func TestExposedListenersAreRefused(t *testing.T) {
	dir := t.TempDir()
	exposed := filepath.Join(dir, "exposed.yaml")
	// Port 99999 cannot be bound: were the file accepted, serve would fail at once instead
	// of running (and the test would still see the refusals missing).
	require.NoError(t, os.WriteFile(exposed, []byte(`http: {listen: "0.0.0.0:99999"}
asterisk: {ari: {enabled: false}}
agi: {enabled: true, listen: "0.0.0.0:4573", allowed_networks: [0.0.0.0/0]}
sip_redirect: {enabled: true, listen: "0.0.0.0:5070"}
managers:
  - {crm_user: 1, endpoints: [PJSIP/100, PJSIP/101]}
  - {crm_user: 2, endpoints: [PJSIP/101]}
`), 0o600))
	readable := filepath.Join(dir, "readable.yaml")
	require.NoError(t, os.WriteFile(readable, []byte("http: {token: admin-0123456789}\n"), 0o600))
	require.NoError(t, os.Chmod(readable, 0o644))

	refused := []string{
		`http.listen: is "0.0.0.0:99999", reachable from other hosts, but neither http.token nor http.read_token is set`,
		`agi.allowed_networks[0]: is "0.0.0.0/0", which allows every address`,
		`sip_redirect.listen: is "0.0.0.0:5070", reachable from other hosts, but sip_redirect.allowed_networks lists only loopback`,
		`managers[1].endpoints[0]: PJSIP/101 is already managers[0].endpoints[1]`,
	}
	runCLICases(t, []cliCase{
		{"check-config refuses", []string{"check-config", exposed}, 1, "", refused},
		{"serve refuses", []string{"serve", "--config", exposed}, 1, "", refused},
		{"a readable secret is a warning", []string{"check-config", readable}, 0, "OK\n", []string{
			"warning: " + readable + " is readable by every user (mode 0644) and holds http.token; chmod 600",
		}},
	})
}

// serve logs the warning check-config prints, from the same Load.
func TestServeWarnsAboutAReadableSecret(t *testing.T) {
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	cfg := filepath.Join(dir, "crmlink.yaml")
	// serveConfig writes amocrm.token into the file: a secret.
	require.NoError(t, os.WriteFile(cfg, []byte(serveConfig(httpAddr, dir, crmSandbox(t), "PJSIP/101", "")), 0o600))
	require.NoError(t, os.Chmod(cfg, 0o644))
	s := startServe(t, cfg, "http://"+httpAddr)
	var warning map[string]any
	for _, line := range strings.Split(s.log.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && strings.HasPrefix(fmt.Sprint(m["message"]), cfg+" is readable by every user") {
			warning = m
		}
	}
	require.NotNil(t, warning, "the warning is logged:\n%s", s.log.String())
	assert.Equal(t, "warn", warning["level"])
	assert.Contains(t, warning["message"], "holds http.read_token, amocrm.token")
	s.stop(t)
}
