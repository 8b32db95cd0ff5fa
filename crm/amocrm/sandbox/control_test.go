package sandbox

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// receiver records the webhooks it gets and answers them with status.
func receiver(t *testing.T, status int) (*httptest.Server, chan url.Values) {
	t.Helper()
	got := make(chan url.Values, 4)
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
		body, err := io.ReadAll(r.Body)
		assert.NoError(t, err)
		form, err := url.ParseQuery(string(body))
		assert.NoError(t, err)
		got <- form
		w.WriteHeader(status)
	}))
	t.Cleanup(rs.Close)
	return rs, got
}

func TestResponsibleWebhookContact(t *testing.T) {
	_, ts := start(t)
	rs, got := receiver(t, http.StatusAccepted)
	require.Equal(t, http.StatusOK, post(t, ts, "/_sandbox/webhook", `{"url":"`+rs.URL+`"}`).status)

	a := post(t, ts, "/_sandbox/responsible", `{"entity":"contact","id":2001,"responsible_user_id":1002,"modified_user_id":1003}`)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	m := a.json(t)
	assert.EqualValues(t, 1001, m["old_responsible_user_id"])
	assert.EqualValues(t, 202, dig(t, m, "webhook", "status"))

	form := <-got
	for key, want := range map[string]string{
		"contacts[update][0][id]":                      "2001",
		"contacts[update][0][responsible_user_id]":     "1002",
		"contacts[update][0][old_responsible_user_id]": "1001",
		"contacts[update][0][modified_user_id]":        "1003",
		"contacts[update][0][type]":                    "contact",
		"contacts[update][0][name]":                    "Иван Петров",
		"account[subdomain]":                           "sandbox",
		"account[id]":                                  "29000001",
	} {
		assert.Equal(t, want, form.Get(key), key)
	}
	assert.NotEmpty(t, form.Get("contacts[update][0][last_modified]"))
	assert.EqualValues(t, 1002, get(t, ts, "/api/v4/contacts/2001").json(t)["responsible_user_id"])
}

func TestResponsibleWebhookLeadAndCompany(t *testing.T) {
	sb, _ := start(t)
	rs, got := receiver(t, http.StatusOK)
	require.NoError(t, sb.SetWebhookURL(rs.URL))

	res, err := sb.SetResponsible(context.Background(), ResponsibleUpdate{Entity: "lead", ID: 4002, ResponsibleUserID: 1001, ModifiedUserID: 1001})
	require.NoError(t, err)
	assert.Equal(t, &WebhookDelivery{URL: rs.URL, Status: 200}, res.Webhook)
	form := <-got
	assert.Equal(t, "4002", form.Get("leads[responsible][0][id]"))
	assert.Equal(t, "1001", form.Get("leads[responsible][0][responsible_user_id]"))
	assert.Equal(t, "1002", form.Get("leads[responsible][0][old_responsible_user_id]"))
	assert.Equal(t, "5101", form.Get("leads[responsible][0][status_id]"))
	assert.Empty(t, form.Get("leads[responsible][0][type]"))

	_, err = sb.SetResponsible(context.Background(), ResponsibleUpdate{Entity: "company", ID: 3001, ResponsibleUserID: 1001})
	require.NoError(t, err)
	form = <-got
	assert.Equal(t, "company", form.Get("contacts[update][0][type]"))
	assert.Equal(t, "3001", form.Get("contacts[update][0][id]"))
	assert.Equal(t, "1002", form.Get("contacts[update][0][old_responsible_user_id]"))
}

func TestResponsibleWithoutOrFailingWebhook(t *testing.T) {
	sb, ts := start(t)
	res, err := sb.SetResponsible(context.Background(), ResponsibleUpdate{Entity: "contact", ID: 2002, ResponsibleUserID: 1001})
	require.NoError(t, err)
	assert.Nil(t, res.Webhook)

	stop := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(stop) })
	sb2 := New(Seed{Contacts: []Contact{{ID: 1, ResponsibleUserID: 1}}}, WithWebhookClient(&http.Client{}, 50*time.Millisecond))
	require.NoError(t, sb2.SetWebhookURL(slow.URL))
	res, err = sb2.SetResponsible(context.Background(), ResponsibleUpdate{Entity: "contact", ID: 1, ResponsibleUserID: 2})
	require.NoError(t, err)
	require.NotNil(t, res.Webhook)
	assert.Zero(t, res.Webhook.Status)
	assert.Contains(t, res.Webhook.Error, "deadline")

	cases := []struct {
		body string
		want int
	}{
		{`{"entity":"deal","id":1,"responsible_user_id":1}`, 400},
		{`{"entity":"lead","id":999,"responsible_user_id":1}`, 404},
		{`{"entity":"lead","id":4001,"responsible_user_id":0}`, 400},
		{`{"entity":"lead","id":"x"}`, 400},
		{`{"entity":"lead","id":4001,"responsible_user_id":1,"extra":1}`, 400},
		{`not json`, 400},
	}
	for _, c := range cases {
		a := post(t, ts, "/_sandbox/responsible", c.body)
		assert.Equal(t, c.want, a.status, c.body)
		assert.Equal(t, "application/problem+json", a.ctype)
	}
}

func TestControlKnobs(t *testing.T) {
	sb, ts := start(t)
	cases := []struct {
		path, body string
		want       int
	}{
		{"/_sandbox/latency", `{"ms":5}`, 200},
		{"/_sandbox/latency", `{"ms":-1}`, 400},
		{"/_sandbox/fail", `{"count":1,"status":503}`, 200},
		{"/_sandbox/fail", `{"count":1,"status":200}`, 400},
		{"/_sandbox/hang", `{"count":0}`, 200},
		{"/_sandbox/hang", `{"enabled":false}`, 200},
		{"/_sandbox/hang", `{}`, 400},
		{"/_sandbox/hang", `{"count":-2}`, 400},
		{"/_sandbox/webhook", `{"url":"mailto:x"}`, 400},
		{"/_sandbox/webhook", `{"url":""}`, 200},
		{"/_sandbox/rate-limit", `{"per_second":-1}`, 200},
		{"/_sandbox/expire-tokens", ``, 200},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, post(t, ts, c.path, c.body).status, c.path+" "+c.body)
	}
	assert.Equal(t, http.StatusServiceUnavailable, get(t, ts, "/api/v4/users").status, "fail count 1 armed above")
	assert.Equal(t, http.StatusOK, get(t, ts, "/api/v4/users").status)

	counts := call(t, context.Background(), http.MethodGet, ts.URL+"/_sandbox/requests", "", "").json(t)
	assert.EqualValues(t, 2, counts["GET /api/v4/users"])
	limited := call(t, context.Background(), http.MethodGet, ts.URL+"/_sandbox/rate-limited", "", "").json(t)
	assert.Equal(t, map[string]any{"rate_limited": float64(0)}, limited, "the 429s served, for tests outside the process")
	assert.Equal(t, http.StatusOK, post(t, ts, "/_sandbox/reset-counters", "").status)
	assert.Zero(t, sb.Requests("GET /api/v4/users"))

	created := call(t, context.Background(), http.MethodGet, ts.URL+"/_sandbox/created", "", "").json(t)
	for _, k := range []string{"contacts", "leads", "tasks", "notes", "unsorted"} {
		assert.Equal(t, []any{}, created[k], k)
	}
}

func TestControlSeedAndState(t *testing.T) {
	sb, ts := start(t)
	seed := `
users: [{id: 7, name: Новый}]
contacts: [{id: 70, name: Клиент, responsible_user_id: 7, phones: ["+7 999 000-00-70"]}]
leads: [{id: 700, name: Сделка, status_id: 1, pipeline_id: 2, responsible_user_id: 7, contact_ids: [70]}]
`
	require.Equal(t, http.StatusOK, post(t, ts, "/_sandbox/seed", seed).status)
	assert.Equal(t, http.StatusNoContent, get(t, ts, "/api/v4/contacts?query=4951234567").status, "old data is gone")
	assert.Equal(t, []int64{70}, idsOf(t, dig(t, get(t, ts, "/api/v4/contacts?query=9990000070").json(t), "_embedded", "contacts")))
	assert.Equal(t, DefaultToken, sb.Token(), "settings the seed leaves out stay")

	st := call(t, context.Background(), http.MethodGet, ts.URL+"/_sandbox/state", "", "").json(t)
	assert.Equal(t, []any{float64(700)}, dig(t, st, "contacts", 0, "lead_ids"), "links are kept both ways")
	assert.Equal(t, "sandbox", dig(t, st, "account", "subdomain"))

	bad := post(t, ts, "/_sandbox/seed", `contacts: [{id: 1, company_id: 5}]`)
	assert.Equal(t, http.StatusBadRequest, bad.status)
	assert.Contains(t, bad.json(t)["detail"], "company_id 5 is not in companies")
	assert.Len(t, sb.State().Contacts, 1, "a rejected seed changes nothing")
}
