package ari

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/routing"
)

// fakeARI is an ARI REST server that records every request as "METHOD /path?query" (the
// query decoded) and answers 200 with an empty JSON object, or what a test set.
type fakeARI struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []string
	// status and body override the answer for "METHOD /path" (without the query).
	status map[string]int
	body   map[string]string
	// handlers, when set for "METHOD /path", give the status of each request in turn.
	handlers map[string]func() int
	seen     chan string
}

func newFakeARI(t *testing.T) *fakeARI {
	f := &fakeARI{t: t, status: map[string]int{}, body: map[string]string{}, seen: make(chan string, 1024)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, "/ari")
		line := r.Method + " " + path
		if q, _ := url.QueryUnescape(r.URL.RawQuery); q != "" {
			line += "?" + q
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, line)
		status, body := http.StatusOK, "{}"
		if s, ok := f.status[r.Method+" "+path]; ok {
			status = s
		}
		if b, ok := f.body[r.Method+" "+path]; ok {
			body = b
		}
		if h, ok := f.handlers[r.Method+" "+path]; ok {
			status = h()
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
		f.seen <- line
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeARI) url() string { return f.srv.URL + "/ari" }

func (f *fakeARI) set(route string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status[route], f.body[route] = status, body
}

// handle makes h decide the status of every request to route.
func (f *fakeARI) handle(route string, h func() int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handlers == nil {
		f.handlers = map[string]func() int{}
	}
	f.handlers[route] = h
}

func (f *fakeARI) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

// await waits for the next request that starts with prefix and returns it.
func (f *fakeARI) await(prefix string) string {
	f.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case line := <-f.seen:
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-timeout:
			f.t.Fatalf("no request %q; got %q", prefix, f.requests())
			return ""
		}
	}
}

// newTestController is a controller talking to the fake ARI, not connected to a websocket.
func newTestController(t *testing.T, f *fakeARI, outcomes chan<- routing.CallOutcome) *Controller {
	t.Helper()
	c, err := New(Options{
		URL: f.url(), WSURL: "ws://127.0.0.1:1/ari/events", Username: "u", Password: "p",
		Application:     "crmlink",
		Decider:         routing.DeciderFunc(func(context.Context, routing.Call) routing.Decision { return routing.Decision{} }),
		FallbackContext: "crmlink-fallback",
		RingTimeout:     5 * time.Second,
		Logger:          zerolog.Nop(),
		OnOutcome:       func(o routing.CallOutcome) { outcomes <- o },
	})
	require.NoError(t, err)
	return c
}
