package main

import (
	"os"
	"path/filepath"
	"testing"

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
