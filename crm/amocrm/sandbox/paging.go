package sandbox

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Paging limits of amoCRM's list endpoints.
const (
	defaultLimit = 50
	maxLimit     = 250
)

type paging struct{ page, limit int }

// listParams are the query parameters every list endpoint understands.
type listParams struct {
	paging
	ids   map[int64]bool // filter[id]; nil when absent
	query matcher
	with  map[string]bool
}

// parseList reads page, limit, filter[id] (as filter[id][]=, filter[id][n]= or filter[id]=
// with commas), query and with. On a bad value it names the parameter and the problem.
func parseList(q url.Values) (listParams, string, string) {
	p := listParams{paging: paging{page: 1, limit: defaultLimit}, query: newMatcher(q.Get("query")), with: parseWith(q)}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, "page", "page must be a positive integer"
		}
		p.page = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return p, "limit", "limit must be an integer from 1 to 250"
		}
		p.limit = n
	}
	ids, ok := intFilter(q, "id")
	if !ok {
		return p, "filter.id", "ids must be integers"
	}
	p.ids = ids
	return p, "", ""
}

// filterValues collects a filter's values however the client spelled it: filter[name]=a,b,
// filter[name][]=a or filter[name][0]=a; nil when absent.
func filterValues(q url.Values, name string) []string {
	var out []string
	key := "filter[" + name + "]"
	for k, vals := range q {
		if k != key && !strings.HasPrefix(k, key+"[") {
			continue
		}
		if out == nil {
			out = []string{}
		}
		for _, v := range vals {
			for _, part := range strings.Split(v, ",") {
				out = append(out, strings.TrimSpace(part))
			}
		}
	}
	return out
}

// intFilter reads a filter of integers; nil when absent, ok false when a value is not one.
func intFilter(q url.Values, name string) (map[int64]bool, bool) {
	vals := filterValues(q, name)
	if vals == nil {
		return nil, true
	}
	set := map[int64]bool{}
	for _, v := range vals {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, false
		}
		set[n] = true
	}
	return set, true
}

// stringFilter reads a filter of strings; nil when absent.
func stringFilter(q url.Values, name string) map[string]bool {
	vals := filterValues(q, name)
	if vals == nil {
		return nil
	}
	set := map[string]bool{}
	for _, v := range vals {
		set[v] = true
	}
	return set
}

func parseWith(q url.Values) map[string]bool {
	with := map[string]bool{}
	for _, v := range q["with"] {
		for _, w := range strings.Split(v, ",") {
			with[strings.TrimSpace(w)] = true
		}
	}
	return with
}

// writePage answers one page of a list: 204 No Content when the page is empty, as amoCRM
// does, else the page with _links.self and, when more items follow, _links.next.
func writePage[T any](w http.ResponseWriter, r *http.Request, rn renderer, key string, all []T, pg paging) {
	start := (pg.page - 1) * pg.limit
	if start >= len(all) || pg.page > len(all) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	end := min(start+pg.limit, len(all))
	ls := links{Self: link{Href: rn.pageHref(r, pg.page, pg.limit)}}
	if end < len(all) {
		ls.Next = &link{Href: rn.pageHref(r, pg.page+1, pg.limit)}
	}
	writeHAL(w, map[string]any{
		"_page":     pg.page,
		"_links":    ls,
		"_embedded": map[string]any{key: all[start:end]},
	})
}

func (rn renderer) pageHref(r *http.Request, page, limit int) string {
	q := r.URL.Query()
	q.Set("page", strconv.Itoa(page))
	q.Set("limit", strconv.Itoa(limit))
	return rn.base + r.URL.Path + "?" + q.Encode()
}
