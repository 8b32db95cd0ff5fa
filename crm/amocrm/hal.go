package amocrm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/crmlink/crmlink/crm"
)

// maxPages stops a pagination that does not end (a server bug must not spin the client).
const maxPages = 200

// pageLinks is the _links of a hal+json list page.
type pageLinks struct {
	Next *struct {
		Href string `json:"href"`
	} `json:"next"`
}

// halList is a list page; _embedded holds one array under the entity's plural name.
type halList struct {
	Links    pageLinks                  `json:"_links"`
	Embedded map[string]json.RawMessage `json:"_embedded"`
}

// getOne reads one entity into out; a 204 (or an empty body) is crm.ErrNotFound.
func (c *Client) getOne(ctx context.Context, path string, query url.Values, out any) error {
	r, err := c.do(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return err
	}
	if r.empty() {
		return apiError(http.MethodGet, path, crm.ErrNotFound)
	}
	if err := json.Unmarshal(r.body, out); err != nil {
		return apiError(http.MethodGet, path, fmt.Errorf("decode response: %w", err))
	}
	return nil
}

// listAll reads every page of a list, following _links.next, and decodes the entities found
// under _embedded[key]. A 204 on the first page is an empty list.
func listAll[T any](ctx context.Context, c *Client, path string, query url.Values, key string) ([]T, error) {
	var all []T
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page == maxPages {
			return all, apiError(http.MethodGet, path, fmt.Errorf("pagination did not end after %d pages", maxPages))
		}
		r, err := c.do(ctx, http.MethodGet, path, query, nil)
		if err != nil {
			return nil, err
		}
		if r.empty() {
			return all, nil
		}
		var l halList
		if err := json.Unmarshal(r.body, &l); err != nil {
			return nil, apiError(http.MethodGet, path, fmt.Errorf("decode page %d: %w", page+1, err))
		}
		if raw, ok := l.Embedded[key]; ok {
			var items []T
			if err := json.Unmarshal(raw, &items); err != nil {
				return nil, apiError(http.MethodGet, path, fmt.Errorf("decode page %d: %w", page+1, err))
			}
			all = append(all, items...)
		}
		if l.Links.Next == nil || l.Links.Next.Href == "" {
			return all, nil
		}
		href := l.Links.Next.Href
		if seen[href] {
			return nil, apiError(http.MethodGet, path, errors.New("next page link points to a page already read"))
		}
		seen[href] = true
		if path, query, err = c.nextPage(href); err != nil {
			return nil, apiError(http.MethodGet, path, err)
		}
	}
}

// nextPage turns a next-page link into a path and query on the client's own base URL: the
// token is only ever sent to the configured account, whatever host a link names.
func (c *Client) nextPage(href string) (string, url.Values, error) {
	u, err := url.Parse(href)
	if err != nil {
		return "", nil, fmt.Errorf("next page link: %w", err)
	}
	p := strings.TrimPrefix(u.Path, c.basePath)
	if !strings.HasPrefix(p, "/api/v4/") {
		return "", nil, fmt.Errorf("next page link %q leaves /api/v4", u.Path)
	}
	return p, u.Query(), nil
}
