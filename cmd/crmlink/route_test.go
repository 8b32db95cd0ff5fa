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
		Token: "tok",
		Users: []sandbox.User{{ID: 7, Name: "Anna"}},
		// amoCRM's search finds the second card too: its name holds the digits.
		Contacts: []sandbox.Contact{{ID: 1, Name: "Client", ResponsibleUserID: 7, Phones: []string{"+7 495 123-45-67"}},
			{ID: 2, Name: "Call back 4951234567 about the invoice", ResponsibleUserID: 7}},
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
		found                  string // the crm.find_contacts step
	}{
		{"84951234567", "ROUTED", "", 7, "search returned 2, 1 with this number"},
		{"84950000000", "FALLBACK", "not_found", 0, "search returned 0, 0 with this number"},
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
					Detail     string   `json:"detail"`
					DurationMS *float64 `json:"duration_ms"`
				} `json:"steps"`
				LatencyMS *float64 `json:"latency_ms"`
			}
			require.NoError(t, json.Unmarshal(out.Bytes(), &d), out.String())
			assert.Equal(t, c.result, d.Result)
			assert.Equal(t, c.reason, d.Reason)
			assert.Equal(t, c.owner, d.Owner)
			require.NotEmpty(t, d.Steps, "each step is listed")
			found := map[string]string{}
			for _, s := range d.Steps {
				found[s.Name] = s.Detail
				assert.NotEmpty(t, s.Name)
				assert.NotNil(t, s.DurationMS, "each step has its timing")
			}
			assert.Equal(t, c.found, found["crm.find_contacts"], "what amoCRM's search returned and what routing kept")
			assert.NotNil(t, d.LatencyMS)
		})
	}
}
