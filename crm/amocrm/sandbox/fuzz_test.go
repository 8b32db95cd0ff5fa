package sandbox

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzServe sends arbitrary requests: the sandbox must answer every one with a status and
// never panic.
func FuzzServe(f *testing.F) {
	for _, s := range []string{
		"GET /api/v4/contacts?query=495&with=leads&limit=2&page=2",
		"GET /api/v4/leads?filter[id][]=4001&filter[id][0]=x",
		"GET /api/v4/contacts/2001/../2002",
		"GET /api/v4/users?limit=-5&page=999999999999999999999",
		"POST /_sandbox/hang {\"count\":\"x\"}",
		"POST /_sandbox/seed users: [{id: -1}]",
		"POST /_sandbox/responsible {\"entity\":\"lead\",\"id\":4001,\"responsible_user_id\":5}",
		"POST /oauth2/access_token {\"grant_type\":\"refresh_token\"}",
		"PUT /api/v4/%zz",
	} {
		f.Add(s)
	}
	seed, err := LoadSeed("testdata/seed.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line string) {
		method, rest, _ := strings.Cut(line, " ")
		target, body, _ := strings.Cut(rest, " ")
		req, err := http.NewRequest(method, "http://sandbox.test"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+DefaultToken)
		sb := New(seed, WithRateLimit(-1))
		defer sb.Close()
		rec := httptest.NewRecorder()
		sb.ServeHTTP(rec, req)
		if rec.Code < 200 || rec.Code > 599 {
			t.Fatalf("status %d for %q", rec.Code, line)
		}
	})
}
