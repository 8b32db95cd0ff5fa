package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// start serves the example seed without a rate limit unless opts set one.
func start(t *testing.T, opts ...Option) (*Server, *httptest.Server) {
	t.Helper()
	seed, err := LoadSeed("testdata/seed.yaml")
	require.NoError(t, err)
	sb := New(seed, append([]Option{WithRateLimit(-1)}, opts...)...)
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	t.Cleanup(sb.Close) // runs first: releases hanging handlers so ts.Close can return
	return sb, ts
}

type answer struct {
	status int
	ctype  string
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(a.body, &m), string(a.body))
	return m
}

func call(t *testing.T, ctx context.Context, method, url, token, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: data}
}

func get(t *testing.T, ts *httptest.Server, path string) answer {
	t.Helper()
	return call(t, context.Background(), http.MethodGet, ts.URL+path, DefaultToken, "")
}

func post(t *testing.T, ts *httptest.Server, path, body string) answer {
	t.Helper()
	return call(t, context.Background(), http.MethodPost, ts.URL+path, "", body)
}

// dig walks a decoded JSON value by object keys and array indexes.
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			require.Truef(t, ok, "want an object at %v", p)
			v = m[k]
		case int:
			a, ok := v.([]any)
			require.Truef(t, ok && k < len(a), "want an array with index %d", k)
			v = a[k]
		}
	}
	return v
}

func idsOf(t *testing.T, list any) []int64 {
	t.Helper()
	var out []int64
	for _, it := range list.([]any) {
		out = append(out, int64(it.(map[string]any)["id"].(float64)))
	}
	return out
}
