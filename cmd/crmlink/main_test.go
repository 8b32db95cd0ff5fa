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

	cases := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderrIn []string
	}{
		{"example accepted", []string{"check-config", "../../examples/crmlink.yaml"}, 0, "OK\n", nil},
		{"misspelt key named with its line", []string{"check-config", misspelt}, 1, "", []string{`line 3: unknown key "chek_manager_status"`, "check_manager_status"}},
		{"missing file", []string{"check-config", filepath.Join(dir, "none.yaml")}, 1, "", []string{"no such file"}},
		{"no argument", []string{"check-config"}, 2, "", []string{"usage"}},
		{"unknown command", []string{"frobnicate"}, 2, "", []string{`unknown command "frobnicate"`}},
		{"version", []string{"version"}, 0, "crmlink dev\n", nil},
	}
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
