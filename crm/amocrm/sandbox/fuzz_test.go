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
		`POST /api/v4/contacts [{"name":"x","custom_fields_values":[{"field_code":"PHONE","values":[{"value":5}]}]}]`,
		`POST /api/v4/contacts [{"custom_fields_values":[{"field_id":100101,"values":[{"value":"t"}]},{"values":null}]}]`,
		`POST /api/v4/leads [{"_embedded":{"contacts":[{"id":2001}],"tags":[{"id":1},{}]}},null]`,
		`PATCH /api/v4/leads [{"id":4001,"responsible_user_id":1002,"status_id":-1}]`,
		`POST /api/v4/tasks [{"text":"t","complete_till":1,"entity_type":"leads","entity_id":4001}]`,
		`PATCH /api/v4/tasks [{"id":1,"is_completed":true,"result":{"text":1}}]`,
		"GET /api/v4/tasks?filter[is_completed]=1&filter[entity_id][]=x",
		`POST /api/v4/leads/4001/notes [{"note_type":"call_in","params":{"uniq":1,"phone":74951234567,"source":"s","duration":-1}}]`,
		"GET /api/v4/contacts/notes?filter[entity_id][]=2001&filter[note_type]=common",
		`POST /api/v4/leads/unsorted/sip [{"source_name":"s","source_uid":"u","metadata":{"phone":"1","called_at":1},"_embedded":{"leads":[{}],"contacts":[{}]}}]`,
		"GET /api/v4/leads/unsorted?filter[category][]=sip&filter[pipeline_id]=x",
		`POST /api/v4/leads/unsorted/abc/accept {"user_id":"x"}`,
		"DELETE /api/v4/leads/unsorted/abc/decline",
		`POST /_sandbox/unsorted/abc/accept {"status_id":-1}`,
		`POST /_sandbox/tasks/99/complete {"result":5}`,
		"GET /_sandbox/created",
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
