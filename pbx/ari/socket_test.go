package ari

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"

	"github.com/crmlink/crmlink/routing"
)

// useFakeSocket connects r's requests to the fake's event websocket, as the controller does
// once Asterisk answered its probe there.
func useFakeSocket(t *testing.T, f *fakeARI, r *restClient) *socket {
	t.Helper()
	conn, err := dialApp(context.Background(), f.wsURL(), "crmlink", "u", "p")
	require.NoError(t, err)
	quit := make(chan struct{})
	s := newSocket(conn, make(chan ari.Event, 16), quit, zerolog.Nop())
	go func() { _ = s.read() }()
	r.useSocket(s)
	t.Cleanup(func() { close(quit); s.close(); <-s.done })
	return s
}

// A request over the websocket gives up at its deadline although Asterisk never answers,
// and leaves nothing waiting behind it.
func TestSocketRequestDeadline(t *testing.T) {
	f := newFakeARI(t)
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	f.mu.Lock()
	f.socketHold = hold
	f.mu.Unlock()
	r := newRESTClient(f.url(), "u", "p", 150*time.Millisecond, 4)
	s := useFakeSocket(t, f, r)

	start := time.Now()
	err := r.answer(context.Background(), "caller-1")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), time.Second)
	s.mu.Lock()
	assert.Empty(t, s.pending, "no request waits for an answer any more")
	s.mu.Unlock()
	assert.Empty(t, f.requests(), "the request went over the websocket only")
}

// When the websocket is gone before a request leaves, HTTP carries it.
func TestSocketDownFallsBackToHTTP(t *testing.T) {
	f := newFakeARI(t)
	r := newRESTClient(f.url(), "u", "p", time.Second, 4)
	s := useFakeSocket(t, f, r)
	f.dropSockets()
	<-s.done

	require.NoError(t, r.answer(context.Background(), "caller-1"))
	assert.Equal(t, []string{"POST /channels/caller-1/answer"}, f.requests())
	assert.Zero(t, f.socketRequests())
}

// At connect the controller learns whether Asterisk takes REST requests on the websocket:
// one that answers the probe gets them there, one that ignores it (before 20.14, 21.9,
// 22.4) over HTTP, unless the configuration requires the websocket.
func TestConnectPicksTheTransport(t *testing.T) {
	cases := []struct {
		name      string
		transport string
		silent    bool // the Asterisk ignores RESTRequest messages
		want      string
		fails     bool
	}{
		{"auto, Asterisk answers on the websocket", TransportAuto, false, TransportWebsocket, false},
		{"auto, an older Asterisk", TransportAuto, true, TransportHTTP, false},
		{"websocket required, an older Asterisk", TransportWebsocket, true, "", true},
		{"websocket required and answered", TransportWebsocket, false, TransportWebsocket, false},
		{"http required: no probe", TransportHTTP, false, TransportHTTP, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeARI(t)
			f.set("GET /endpoints", http.StatusOK, `[]`)
			f.mu.Lock()
			f.socketSilent = tc.silent
			f.mu.Unlock()
			c := newTestController(t, f, make(chan routing.CallOutcome, 1))
			c.opts.Transport, c.opts.ProbeTimeout = tc.transport, 200*time.Millisecond
			events, quit := make(chan ari.Event, 16), make(chan struct{})
			defer close(quit)

			s, err := c.connect(context.Background(), events, quit, zerolog.Nop())
			if tc.fails {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "asterisk.ari.transport is websocket")
				assert.False(t, c.Connected())
				return
			}
			require.NoError(t, err)
			defer s.close()
			assert.Equal(t, tc.want, c.rest.transport())
			assert.True(t, c.Connected())
			assert.Contains(t, f.requests(), "PUT /applications/crmlink/eventFilter", "the filter is set over HTTP, before the probe")
			// Over the websocket once it answered: the probe and the presence list after it.
			overSocket := 0
			if tc.want == TransportWebsocket {
				overSocket = 2
			}
			assert.Equal(t, overSocket, f.socketRequests(), "requests answered over the websocket")

			// Events still reach the dispatcher; a REST answer does not.
			require.NoError(t, websocket.Message.Send(f.socket(), `{"type":"StasisStart","args":["incoming"],"channel":{"id":"caller-9"}}`))
			select {
			case e := <-events:
				require.IsType(t, &ari.StasisStart{}, e)
				assert.Equal(t, "caller-9", e.(*ari.StasisStart).Channel.ID)
			case <-time.After(5 * time.Second):
				t.Fatal("no event")
			}
		})
	}
}

// The event filter lets Asterisk's answers through: Asterisk filters them like events, and
// an application filtered without them never hears back.
func TestFilterLetsRESTResponsesThrough(t *testing.T) {
	assert.Contains(t, filteredEvents, restResponseEvent)
	for _, e := range handledEvents {
		assert.Contains(t, filteredEvents, e)
	}
}

// errSocketDown is what makes HTTP carry a request; a request that left and lost its
// answer is not sent twice.
func TestSocketClosedAfterSendIsNotRetried(t *testing.T) {
	f := newFakeARI(t)
	hold := make(chan struct{})
	defer close(hold)
	f.mu.Lock()
	f.socketHold = hold
	f.mu.Unlock()
	r := newRESTClient(f.url(), "u", "p", 5*time.Second, 4)
	s := useFakeSocket(t, f, r)
	done := make(chan error, 1)
	go func() { done <- r.answer(context.Background(), "caller-1") }()
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.pending) == 1
	}, 5*time.Second, 10*time.Millisecond)
	s.close()
	err := <-done
	require.Error(t, err)
	assert.False(t, errors.Is(err, errSocketDown), "%v", err)
	assert.Empty(t, f.requests(), "not sent again over HTTP")
}

func TestRESTRequestMessageReadsBackAsSent(t *testing.T) {
	tests := []struct {
		name   string
		query  url.Values
		body   []byte
		values []string
	}{
		{"no query, no body", nil, nil, nil},
		{"query", url.Values{"variable": {"ARRAY(CRMLINK_RESULT,CRMLINK_DIAL)"}, "value": {"ROUTED,PJSIP/101&PJSIP/102"}}, nil, nil},
		{"quotes, backslashes, control characters, UTF-8, bad UTF-8", url.Values{"value": {"a\"b\\c\n\x01é\xff"}}, nil, nil},
		{"body", nil, []byte(`{"allowed":[{"type":"StasisStart"}]}`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := appendRESTRequest(nil, "7", "POST", "channels/1733.1/variable", tt.query, tt.body)
			var got restRequestMsg
			require.NoError(t, json.Unmarshal(data, &got), string(data))
			assert.Equal(t, "RESTRequest", got.Type)
			assert.Equal(t, "7", got.RequestID)
			assert.Equal(t, "POST", got.Method)
			assert.Equal(t, "channels/1733.1/variable", got.URI)
			gotQuery := url.Values{}
			for _, nv := range got.QueryStrings {
				gotQuery.Add(nv.Name, nv.Value)
			}
			wantQuery := url.Values{}
			for k, vs := range tt.query {
				for _, v := range vs {
					// encoding/json reads invalid UTF-8 back as U+FFFD.
					wantQuery.Add(k, strings.ToValidUTF8(v, "\uFFFD"))
				}
			}
			assert.Equal(t, wantQuery, gotQuery)
			if tt.body != nil {
				assert.Equal(t, "application/json", got.ContentType)
				assert.Equal(t, string(tt.body), got.MessageBody)
			}
		})
	}
}
