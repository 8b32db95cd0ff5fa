package sandbox

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuth(t *testing.T) {
	_, ts := start(t)
	cases := []struct {
		name, token string
		want        int
	}{
		{"missing", "", http.StatusUnauthorized},
		{"wrong", "nope", http.StatusUnauthorized},
		{"right", DefaultToken, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := call(t, context.Background(), http.MethodGet, ts.URL+"/api/v4/users", c.token, "")
			assert.Equal(t, c.want, a.status)
			if c.want == http.StatusUnauthorized {
				assert.Equal(t, "application/problem+json", a.ctype)
				assert.EqualValues(t, 401, a.json(t)["status"])
			}
		})
	}
}

func TestContactSearch(t *testing.T) {
	_, ts := start(t)
	cases := []struct {
		query string
		want  []int64
	}{
		{"4951234567", []int64{2001, 2004}}, // 2004 only mentions it in a comment
		{"+7 (495) 123-45-67", []int64{2001}},
		{"9160001122", []int64{2001}},
		{"4957654321", []int64{2002}},
		{"ромашк", []int64{2004}},
		{"петров", []int64{2001}},
		{"4959990011", []int64{2003}},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			a := get(t, ts, "/api/v4/contacts?query="+urlEscape(c.query))
			require.Equal(t, http.StatusOK, a.status, string(a.body))
			assert.Equal(t, "application/hal+json", a.ctype)
			assert.Equal(t, c.want, idsOf(t, dig(t, a.json(t), "_embedded", "contacts")))
		})
	}
}

func TestContactSearchNothingIs204(t *testing.T) {
	_, ts := start(t)
	a := get(t, ts, "/api/v4/contacts?query=3430000000")
	assert.Equal(t, http.StatusNoContent, a.status)
	assert.Empty(t, a.body)
}

func TestContactShape(t *testing.T) {
	_, ts := start(t)
	m := get(t, ts, "/api/v4/contacts?query=4951234567&with=leads").json(t)
	c := dig(t, m, "_embedded", "contacts", 0)
	assert.EqualValues(t, 2001, dig(t, c, "id"))
	assert.Equal(t, "Иван Петров", dig(t, c, "name"))
	assert.EqualValues(t, 1001, dig(t, c, "responsible_user_id"))
	f := dig(t, c, "custom_fields_values", 0)
	assert.Equal(t, "PHONE", dig(t, f, "field_code"))
	assert.Equal(t, "multitext", dig(t, f, "field_type"))
	assert.Equal(t, "+7 (495) 123-45-67", dig(t, f, "values", 0, "value"))
	assert.Equal(t, "WORK", dig(t, f, "values", 0, "enum_code"))
	assert.Equal(t, []int64{4001, 4002}, idsOf(t, dig(t, c, "_embedded", "leads")))
	assert.Equal(t, []int64{3001}, idsOf(t, dig(t, c, "_embedded", "companies")))
	assert.Equal(t, ts.URL+"/api/v4/contacts/2001", dig(t, c, "_links", "self", "href"))
	assert.Contains(t, dig(t, m, "_links", "self", "href"), ts.URL+"/api/v4/contacts?")

	other := get(t, ts, "/api/v4/contacts/2004").json(t)
	assert.Nil(t, dig(t, other, "_embedded", "leads"), "leads only with=leads")
	assert.Equal(t, "Комментарий", dig(t, other, "custom_fields_values", 1, "field_name"))
	assert.Nil(t, dig(t, other, "custom_fields_values", 1, "field_code"))
}

func TestPagination(t *testing.T) {
	_, ts := start(t)
	var got []int64
	next := ts.URL + "/api/v4/contacts?limit=3"
	pages := 0
	for next != "" {
		a := call(t, context.Background(), http.MethodGet, next, DefaultToken, "")
		require.Equal(t, http.StatusOK, a.status)
		m := a.json(t)
		pages++
		assert.EqualValues(t, pages, m["_page"])
		got = append(got, idsOf(t, dig(t, m, "_embedded", "contacts"))...)
		next = ""
		if n, ok := dig(t, m, "_links").(map[string]any)["next"]; ok {
			next = n.(map[string]any)["href"].(string)
		}
	}
	assert.Equal(t, 2, pages)
	assert.Equal(t, []int64{2001, 2002, 2003, 2004}, got)
	assert.Equal(t, http.StatusNoContent, get(t, ts, "/api/v4/contacts?limit=3&page=3").status)
}

func TestFiltersAndSingleEntities(t *testing.T) {
	_, ts := start(t)
	m := get(t, ts, "/api/v4/leads?filter[id][]=4003&filter[id][]=4001&filter[id][]=9999&with=contacts").json(t)
	assert.Equal(t, []int64{4001, 4003}, idsOf(t, dig(t, m, "_embedded", "leads")))
	assert.Equal(t, []int64{2002}, idsOf(t, dig(t, m, "_embedded", "leads", 1, "_embedded", "contacts")))
	assert.Equal(t, []int64{2003}, idsOf(t, dig(t, get(t, ts, "/api/v4/contacts?filter[id]=2003").json(t), "_embedded", "contacts")))

	l := get(t, ts, "/api/v4/leads/4001").json(t)
	assert.EqualValues(t, 142, l["status_id"])
	assert.EqualValues(t, 5001, l["pipeline_id"])
	assert.NotNil(t, l["closed_at"])

	co := get(t, ts, "/api/v4/companies/3001").json(t)
	assert.Equal(t, "ООО Ромашка", co["name"])
	assert.EqualValues(t, 1002, co["responsible_user_id"])

	users := get(t, ts, "/api/v4/users").json(t)
	assert.Equal(t, []int64{1001, 1002, 1003}, idsOf(t, dig(t, users, "_embedded", "users")))
	assert.Equal(t, false, dig(t, users, "_embedded", "users", 2, "rights", "is_active"))
}

func TestBadRequestsAreProblems(t *testing.T) {
	_, ts := start(t)
	cases := []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v4/contacts/9999", 404},
		{"GET", "/api/v4/contacts/abc", 404},
		{"GET", "/api/v4/contacts/-1", 404},
		{"GET", "/api/v4/leads/0", 404},
		{"GET", "/api/v4/companies/77", 404},
		{"GET", "/api/v4/nothing", 404},
		{"GET", "/api/v4/contacts/1/2/3", 404},
		{"GET", "/api/v4/contacts?limit=251", 400},
		{"GET", "/api/v4/contacts?limit=x", 400},
		{"GET", "/api/v4/contacts?page=0", 400},
		{"GET", "/api/v4/contacts?page=99999999999999999999", 400},
		{"GET", "/api/v4/leads?filter[id][]=x", 400},
		{"DELETE", "/api/v4/contacts/2001", 405},
		{"GET", "/elsewhere", 404},
		{"GET", "/_sandbox/nothing", 404},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			a := call(t, context.Background(), c.method, ts.URL+c.path, DefaultToken, "")
			assert.Equal(t, c.want, a.status)
			assert.Equal(t, "application/problem+json", a.ctype)
			assert.EqualValues(t, c.want, a.json(t)["status"])
		})
	}
	a := get(t, ts, "/api/v4/contacts?limit=251").json(t)
	assert.Equal(t, "limit", dig(t, a, "validation-errors", 0, "errors", 0, "path"))
	assert.Equal(t, http.StatusNoContent, get(t, ts, "/api/v4/contacts?page=9223372036854775807").status)
}

func urlEscape(s string) string {
	r := strings.NewReplacer("+", "%2B", " ", "%20", "(", "%28", ")", "%29")
	return r.Replace(s)
}
