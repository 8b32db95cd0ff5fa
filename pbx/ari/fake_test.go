package ari

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"

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
	// The websocket: socketSilent ignores REST requests (an Asterisk before 20.14, 21.9,
	// 22.4), socketHold, when set, delays each answer until it is closed.
	sockets      []*websocket.Conn
	socketSilent bool
	socketHold   chan struct{}
	overSocket   int
}

func newFakeARI(t *testing.T) *fakeARI {
	f := &fakeARI{t: t, status: map[string]int{}, body: map[string]string{}, seen: make(chan string, 1024)}
	ws := websocket.Server{Handler: f.serveSocket}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, "/ari")
		if path == "/events" {
			ws.ServeHTTP(w, r)
			return
		}
		status, body := f.answer(r.Method, path, r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// answer records one request, over HTTP or the websocket alike, and gives its answer.
func (f *fakeARI) answer(method, path, rawQuery string) (int, string) {
	line := method + " " + path
	if q, _ := url.QueryUnescape(rawQuery); q != "" {
		line += "?" + q
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, line)
	status, body := http.StatusOK, "{}"
	if s, ok := f.status[method+" "+path]; ok {
		status = s
	}
	if b, ok := f.body[method+" "+path]; ok {
		body = b
	}
	if h, ok := f.handlers[method+" "+path]; ok {
		status = h()
	}
	f.mu.Unlock()
	f.seen <- line
	return status, body
}

// serveSocket is the event websocket: it answers RESTRequest messages as Asterisk 20.14,
// 21.9, 22.4 and later do, unless the test made it an older Asterisk (socketREST false),
// which ignores them.
func (f *fakeARI) serveSocket(ws *websocket.Conn) {
	f.mu.Lock()
	f.sockets = append(f.sockets, ws)
	f.mu.Unlock()
	for {
		var data []byte
		if err := websocket.Message.Receive(ws, &data); err != nil {
			return
		}
		var req restRequestMsg
		if json.Unmarshal(data, &req) != nil || req.Type != "RESTRequest" {
			continue
		}
		f.mu.Lock()
		silent, hold := f.socketSilent, f.socketHold
		f.mu.Unlock()
		if silent {
			continue
		}
		if hold != nil {
			<-hold
		}
		q := url.Values{}
		for _, nv := range req.QueryStrings {
			q.Add(nv.Name, nv.Value)
		}
		f.mu.Lock()
		f.overSocket++
		f.mu.Unlock()
		status, body := f.answer(req.Method, "/"+req.URI, q.Encode())
		out, _ := json.Marshal(map[string]any{"type": "RESTResponse", "request_id": req.RequestID, "status_code": status,
			"reason_phrase": http.StatusText(status), "uri": req.URI, "content_type": "application/json", "message_body": body})
		if websocket.Message.Send(ws, string(out)) != nil {
			return
		}
	}
}

// wsURL is the fake's event websocket.
func (f *fakeARI) wsURL() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ari/events" }

// socketRequests is how many requests came over the websocket.
func (f *fakeARI) socketRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.overSocket
}

// socket waits for the server's side of the first websocket.
func (f *fakeARI) socket() *websocket.Conn {
	f.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		f.mu.Lock()
		n := len(f.sockets)
		f.mu.Unlock()
		if n > 0 {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.sockets[0]
		}
	}
	f.t.Fatal("no websocket reached the fake ARI")
	return nil
}

// dropSockets closes the server's side of the websocket.
func (f *fakeARI) dropSockets() { _ = f.socket().Close() }

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
		URL: f.url(), WSURL: f.wsURL(), Username: "u", Password: "p",
		Application:     "crmlink",
		Decider:         routing.DeciderFunc(func(context.Context, routing.Call) routing.Decision { return routing.Decision{} }),
		FallbackContext: "crmlink-fallback",
		RingTimeout:     5 * time.Second,
		Ringing:         RingBridge, // dialring_test.go sets RingDialplan
		Logger:          zerolog.Nop(),
		OnOutcome:       func(o routing.CallOutcome) { outcomes <- o },
	})
	require.NoError(t, err)
	return c
}
