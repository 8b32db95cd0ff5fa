package main

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
)

func TestRouteExplainsADecision(t *testing.T) {
	crm := sandbox.New(sandbox.Seed{
		Token:    "tok",
		Users:    []sandbox.User{{ID: 7, Name: "Anna"}},
		Contacts: []sandbox.Contact{{ID: 1, Name: "Client", ResponsibleUserID: 7, Phones: []string{"+7 495 123-45-67"}}},
	})
	srv := httptest.NewServer(crm)
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "crmlink.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
asterisk:
  ari: {enabled: false}
amocrm:
  base_url: `+srv.URL+`
  token: tok
managers:
  - crm_user: 7
    endpoints: [PJSIP/101]
`), 0o600))

	cases := []struct {
		number, result, reason string
		owner                  int64
	}{
		{"84951234567", "ROUTED", "", 7},
		{"84950000000", "FALLBACK", "not_found", 0},
	}
	for _, c := range cases {
		t.Run(c.number, func(t *testing.T) {
			var out, errOut bytes.Buffer
			require.Equal(t, 0, run([]string{"route", "--config", cfg, c.number}, &out, &errOut), errOut.String())
			var d struct {
				Result string `json:"result"`
				Reason string `json:"reason"`
				Owner  int64  `json:"owner"`
				Steps  []struct {
					Name       string   `json:"name"`
					DurationMS *float64 `json:"duration_ms"`
				} `json:"steps"`
				LatencyMS *float64 `json:"latency_ms"`
			}
			require.NoError(t, json.Unmarshal(out.Bytes(), &d), out.String())
			assert.Equal(t, c.result, d.Result)
			assert.Equal(t, c.reason, d.Reason)
			assert.Equal(t, c.owner, d.Owner)
			require.NotEmpty(t, d.Steps, "each step is listed")
			for _, s := range d.Steps {
				assert.NotEmpty(t, s.Name)
				assert.NotNil(t, s.DurationMS, "each step has its timing")
			}
			assert.NotNil(t, d.LatencyMS)
		})
	}
}
