package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
)

func newServer(t *testing.T, tokens Tokens) (*Server, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	return New(tokens, prometheus.NewRegistry(), zerolog.New(&logs)), &logs
}

func do(t *testing.T, h http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHealthz(t *testing.T) {
	cases := []struct {
		name   string
		checks []Check
		code   int
		status string
	}{
		{"all up", []Check{{Name: "ari", Required: true, State: func(context.Context) (bool, string) { return true, "registered" }}}, 200, "ok"},
		{"required down", []Check{{Name: "ari", Required: true, State: func(context.Context) (bool, string) { return false, "not connected" }}}, 503, "degraded"},
		{"optional down", []Check{{Name: "redis", State: func(context.Context) (bool, string) { return false, "x" }}}, 200, "ok"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := newServer(t, Tokens{})
			for _, ch := range c.checks {
				s.AddCheck(ch)
			}
			rec := do(t, s, "GET", "/healthz", "")
			assert.Equal(t, c.code, rec.Code)
			var h health
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &h))
			assert.Equal(t, c.status, h.Status)
			assert.Len(t, h.Checks, len(c.checks))
		})
	}
}

func TestMetricsExposition(t *testing.T) {
	s, _ := newServer(t, Tokens{})
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "crmlink_test_total", Help: "x"})
	s.registry.MustRegister(c)
	c.Inc()
	rec := do(t, s, "GET", "/metrics", "")
	assert.Equal(t, 200, rec.Code)
	assert.Contains(t, rec.Body.String(), "crmlink_test_total 1")
}

func TestEndpointsNeedTheirToken(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	both := Tokens{Admin: "admin-secret", Read: "read-secret"}
	cases := []struct {
		name   string
		tokens Tokens
		access Access
		header string
		code   int
		says   string // in the answer: what to send or set
	}{
		{"read: no header", both, Read, "", 401, "http.read_token"},
		{"read: read token", both, Read, "Bearer read-secret", 204, ""},
		{"read: admin token", both, Read, "Bearer admin-secret", 204, ""},
		{"read: scheme in lower case", both, Read, "bearer read-secret", 204, ""},
		{"read: basic scheme", both, Read, "Basic read-secret", 401, "Authorization: Bearer"},
		{"read: wrong token", both, Read, "Bearer read-secre", 401, "wrong bearer token"},
		{"read: not bearer", both, Read, "read-secret", 401, "Authorization: Bearer"},
		{"read: empty bearer", both, Read, "Bearer ", 401, "Authorization: Bearer"},
		{"admin: no header", both, Admin, "", 401, "http.token"},
		{"admin: read token", both, Admin, "Bearer read-secret", 403, "read token does not allow changes"},
		{"admin: admin token", both, Admin, "Bearer admin-secret", 204, ""},
		{"admin: wrong token", both, Admin, "Bearer nope", 401, "wrong bearer token"},
		{"read with only the admin token set", Tokens{Admin: "admin-secret"}, Read, "Bearer admin-secret", 204, ""},
		{"admin with only the read token set", Tokens{Read: "read-secret"}, Admin, "Bearer read-secret", 403, "off until http.token"},
		{"no tokens: read is off", Tokens{}, Read, "Bearer ", 403, "off until http.read_token"},
		{"no tokens: admin is off", Tokens{}, Admin, "", 403, "off until http.token"},
		{"open needs nothing", both, Open, "", 204, ""},
		{"webhooks authenticate themselves", Tokens{}, Webhook, "", 204, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, logs := newServer(t, c.tokens)
			s.Handle("PUT /v1/x", c.access, ok)
			rec := do(t, s, "PUT", "/v1/x", "", "Authorization", c.header)
			assert.Equal(t, c.code, rec.Code)
			assert.Contains(t, rec.Body.String(), c.says)
			if c.code >= 400 {
				assert.Contains(t, logs.String(), "rejected API request")
			}
			assert.NotContains(t, logs.String(), "secret", "a token is never logged")
		})
	}
}

func TestRefusedRequestsAreLoggedOncePerInterval(t *testing.T) {
	s, logs := newServer(t, Tokens{Admin: "admin-secret"})
	s.Handle("GET /v1/x", Read, http.NotFoundHandler())
	for range 1000 {
		require.Equal(t, 401, do(t, s, "GET", "/v1/x", "", "Authorization", "Bearer guess").Code)
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "rejected API request"), logs.String())
	assert.NotContains(t, logs.String(), "guess")
}

func TestRoutesListsEveryRegistration(t *testing.T) {
	s, _ := newServer(t, Tokens{})
	s.Handle("GET /v1/route", Read, http.NotFoundHandler())
	assert.Equal(t, []Route{{"GET /healthz", Open}, {"GET /metrics", Open}, {"GET /v1/route", Read}}, s.Routes())
}

func TestRouteHandler(t *testing.T) {
	dec := routing.DeciderFunc(func(_ context.Context, c routing.Call) routing.Decision {
		return routing.Decision{Result: routing.Routed, Owner: 7, Source: routing.SourceCache, Targets: []routing.Target{{Endpoint: "PJSIP/101"}}}
	})
	h := RouteHandler(dec)
	assert.Equal(t, 400, do(t, h, "GET", "/v1/route", "").Code)
	assert.Equal(t, 400, do(t, h, "GET", "/v1/route?number="+strings.Repeat("1", 65), "").Code)
	rec := do(t, h, "GET", "/v1/route?number=84951234567", "")
	require.Equal(t, 200, rec.Code)
	assert.JSONEq(t, `{"result":"ROUTED","owner":7,"source":"cache","targets":[{"endpoint":"PJSIP/101"}],"latency_ms":0}`, rec.Body.String())
}

type recordingApplier struct {
	got []crm.ResponsibleChange
	err error
}

func (r *recordingApplier) ApplyResponsibleChange(_ context.Context, ch crm.ResponsibleChange) error {
	r.got = append(r.got, ch)
	return r.err
}

func TestAmoCRMWebhook(t *testing.T) {
	form := "contacts[update][0][id]=2007&contacts[update][0][responsible_user_id]=1004&contacts[update][0][old_responsible_user_id]=1001&contacts[update][0][type]=contact&account[subdomain]=acme&account[id]=1"
	cases := []struct {
		name, path, body string
		code             int
		applied          int
	}{
		{"valid", "/v1/webhooks/amocrm/s3cret", form, 200, 1},
		{"wrong secret", "/v1/webhooks/amocrm/guess", form, 401, 0},
		{"not a webhook", "/v1/webhooks/amocrm/s3cret", "a=b", 400, 0},
		{"broken form", "/v1/webhooks/amocrm/s3cret", "%zz", 400, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, logs := newServer(t, Tokens{})
			app := &recordingApplier{}
			s.Handle("POST /v1/webhooks/amocrm/{secret}", Webhook, AmoCRMWebhook("s3cret", app, nil, zerolog.New(logs)))
			rec := do(t, s, "POST", c.path, c.body, "Content-Type", "application/x-www-form-urlencoded")
			assert.Equal(t, c.code, rec.Code)
			assert.Len(t, app.got, c.applied)
			if c.code >= 400 {
				assert.NotEmpty(t, logs.String(), "a refused webhook leaves a log line")
			}
			assert.NotContains(t, logs.String(), "s3cret")
		})
	}
	s, _ := newServer(t, Tokens{})
	app := &recordingApplier{}
	s.Handle("POST /v1/webhooks/amocrm/{secret}", Webhook, AmoCRMWebhook("s3cret", app, nil, zerolog.Nop()))
	do(t, s, "POST", "/v1/webhooks/amocrm/s3cret", form, "Content-Type", "application/x-www-form-urlencoded")
	require.Len(t, app.got, 1)
	assert.Equal(t, crm.ResponsibleChange{Entity: crm.EntityContact, ID: 2007, Responsible: 1004, OldResponsible: 1001}, app.got[0])
	// An applier failure is logged and still answered 200: amoCRM disables webhooks that
	// keep failing, and the cache expires by itself.
	app.err = errors.New("redis down")
	assert.Equal(t, 200, do(t, s, "POST", "/v1/webhooks/amocrm/s3cret", form, "Content-Type", "application/x-www-form-urlencoded").Code)
}

type availability struct {
	set map[crm.UserID]routing.Availability
}

func (a *availability) SetManagerAvailability(u crm.UserID, s routing.Availability) error {
	if u != 1001 {
		return errors.New("crm user 42 is not a configured manager")
	}
	a.set[u] = s
	return nil
}
func (a *availability) ManagerAvailability(u crm.UserID) routing.Availability { return a.set[u] }

func TestManagerAvailability(t *testing.T) {
	a := &availability{set: map[crm.UserID]routing.Availability{}}
	get, put := ManagerAvailability(a)
	s, _ := newServer(t, Tokens{Admin: "tok"})
	s.Handle("GET /v1/managers/{id}/availability", Read, get)
	s.Handle("PUT /v1/managers/{id}/availability", Admin, put)
	auth := []string{"Authorization", "Bearer tok"}
	assert.Equal(t, 200, do(t, s, "PUT", "/v1/managers/1001/availability", `{"state":"unavailable"}`, auth...).Code)
	assert.Equal(t, routing.Unavailable, a.set[1001])
	assert.Equal(t, 404, do(t, s, "PUT", "/v1/managers/42/availability", `{"state":"unavailable"}`, auth...).Code)
	assert.Equal(t, 400, do(t, s, "PUT", "/v1/managers/abc/availability", `{"state":"unavailable"}`, auth...).Code)
	assert.Equal(t, 400, do(t, s, "PUT", "/v1/managers/1001/availability", `{"state":"maybe"}`, auth...).Code)
	assert.Equal(t, 400, do(t, s, "PUT", "/v1/managers/1001/availability", `not json`, auth...).Code)
	rec := do(t, s, "GET", "/v1/managers/1001/availability", "", auth...)
	assert.JSONEq(t, `{"state":"unavailable"}`, rec.Body.String())
}
