package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// check-config (the systemd unit's ExecStartPre) and serve's start refuse the same files
// with the same message, which names the key and what it takes. Each row runs this
// package's binary twice as a process (TestMain): `check-config FILE`, `serve --config FILE`.
func TestCheckConfigRefusesWhatServeRefuses(t *testing.T) {
	const quiet = "http: {listen: \"127.0.0.1:0\"}\nlog: {format: json}\n"
	cases := []struct {
		name, yaml string
		key        string   // the key the message names
		allowed    []string // what the message says is allowed
	}{
		{"empty working hours", quiet + "managers: [{crm_user: 5, endpoints: [PJSIP/101], schedule: {hours: \"09:00-09:00\"}}]\n",
			`managers[0].schedule.hours "09:00-09:00"`, []string{"start equals end", "00:00-24:00"}},
		{"an end past 24:00", quiet + "managers: [{crm_user: 5, endpoints: [PJSIP/101], schedule: {hours: \"09:00-24:30\"}}]\n",
			`managers[0].schedule.hours "09:00-24:30"`, []string{"00:00-23:59", "24:00 allowed as an end"}},
		{"a port that is not a number", "http: {listen: \"127.0.0.1:abc\"}\n",
			`http.listen: is "127.0.0.1:abc"`, []string{"port number 0 to 65535", "127.0.0.1:8080"}},
		{"a duration that is not one", quiet + "routing:\n  lookup_timeout: fast\n",
			`routing.lookup_timeout: "fast" is not a duration`, []string{"1500ms", "2s"}},
		{"a word for a user id", quiet + "managers:\n  - crm_user: anna\n    endpoints: [PJSIP/101]\n",
			`managers[0].crm_user: "anna" is not a whole number`, []string{"1001"}},
		{"a contact template with two users", quiet + "sip_redirect: {enabled: true, listen: \"127.0.0.1:0\", contact_template: \"sip:{user}{user}@127.0.0.1\"}\n",
			`sip_redirect.contact_template: is "sip:{user}{user}@127.0.0.1"`, []string{"exactly once", "sip:{user}@127.0.0.1:5060"}},
		{"a fallback contact that is no URI", quiet + "sip_redirect: {enabled: true, listen: \"127.0.0.1:0\", fallback_contact: \"sip:fallback@\"}\n",
			`sip_redirect.fallback_contact: is "sip:fallback@"`, []string{"sip:fallback@127.0.0.1:5060"}},
		{"an allowed network without a mask", quiet + "sip_redirect: {enabled: true, listen: \"127.0.0.1:0\", allowed_networks: [10.0.0.1]}\n",
			`sip_redirect.allowed_networks[0]: is "10.0.0.1"`, []string{"10.0.0.0/8"}},
		{"an ARI URL without a scheme", quiet + "asterisk: {ari: {enabled: true, url: \"127.0.0.1:8088/ari\"}}\n",
			`asterisk.ari.url: is "127.0.0.1:8088/ari"`, []string{"absolute http or https URL"}},
		{"a rate the amoCRM client refuses", quiet + "amocrm: {base_url: \"https://x.amocrm.ru\", token: t, rate_limit: 0.0001, call_reserve: 0}\n",
			`amocrm.rate_limit: is 0.0001`, []string{"0.001 to 50"}},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, string(rune('a'+i))+".yaml")
			require.NoError(t, os.WriteFile(file, []byte(c.yaml), 0o600))
			check, checkCode := runBinary(t, "check-config", file)
			start, startCode := runBinary(t, "serve", "--config", file)
			assert.Equal(t, 1, checkCode, "check-config must refuse:\n%s", check)
			assert.Equal(t, 1, startCode, "serve must refuse:\n%s", start)
			assert.Contains(t, check, c.key)
			for _, a := range c.allowed {
				assert.Contains(t, check, a)
			}
			assert.Equal(t, check, start, "check-config and serve say the same")
		})
	}
}

// runBinary runs crmlink as a process and returns its output and exit code; a serve that
// starts is stopped after a few seconds (its exit code is then not 1).
func runBinary(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CRMLINK_TEST_EXEC=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !assert.ErrorAs(t, err, &exit) {
		return string(out), -1
	}
	return string(out), cmd.ProcessState.ExitCode()
}
