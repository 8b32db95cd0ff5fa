package ari

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRESTRequests(t *testing.T) {
	cases := []struct {
		name string
		call func(context.Context, *restClient) error
		want []string
	}{
		{
			name: "originate a leg",
			call: func(ctx context.Context, r *restClient) error {
				return r.originate(ctx, originateRequest{Endpoint: "PJSIP/101", App: "crmlink", AppArgs: legArg,
					CallerID: `"" <79161234567>`, ChannelID: "crmlink-leg-1", Originator: "caller-1", Timeout: 20 * time.Second})
			},
			want: []string{`POST /channels?app=crmlink&appArgs=crmlink-leg&callerId="" <79161234567>&channelId=crmlink-leg-1&endpoint=PJSIP/101&originator=caller-1&timeout=20`},
		},
		{
			name: "both channels join the bridge in one request",
			call: func(ctx context.Context, r *restClient) error {
				return r.addChannels(ctx, "crmlink-br-1", "caller-1", "crmlink-leg-1")
			},
			want: []string{"POST /bridges/crmlink-br-1/addChannel?channel=caller-1,crmlink-leg-1"},
		},
		{
			name: "plain values are set in one ARRAY() request",
			call: func(ctx context.Context, r *restClient) error {
				return r.setVariables(ctx, "caller-1", []channelVar{
					{"CRMLINK_RESULT", "ROUTED"}, {"CRMLINK_REASON", ""}, {"CRMLINK_OWNER", "1001"},
					{"CRMLINK_SOURCE", "crm"}, {"CDR(userfield)", "crmlink:ROUTED"},
				})
			},
			want: []string{"POST /channels/caller-1/variable?value=ROUTED,,1001,crm,crmlink:ROUTED&variable=ARRAY(CRMLINK_RESULT,CRMLINK_REASON,CRMLINK_OWNER,CRMLINK_SOURCE,CDR(userfield))"},
		},
		{
			name: "a value ARRAY() would split is set on its own",
			call: func(ctx context.Context, r *restClient) error {
				return r.setVariables(ctx, "caller-1", []channelVar{{"A", "x,y"}, {"B", "1"}, {"C", "2"}})
			},
			want: []string{
				"POST /channels/caller-1/variable?value=x,y&variable=A",
				"POST /channels/caller-1/variable?value=1,2&variable=ARRAY(B,C)",
			},
		},
		{
			name: "a single variable needs no ARRAY()",
			call: func(ctx context.Context, r *restClient) error {
				return r.setVariables(ctx, "caller-1", []channelVar{{"CRMLINK_RESULT", "FALLBACK"}})
			},
			want: []string{"POST /channels/caller-1/variable?value=FALLBACK&variable=CRMLINK_RESULT"},
		},
		{
			name: "continue in the fallback",
			call: func(ctx context.Context, r *restClient) error {
				return r.continueIn(ctx, "caller-1", "crmlink-fallback", "200", 1)
			},
			want: []string{"POST /channels/caller-1/continue?context=crmlink-fallback&extension=200&priority=1"},
		},
		{
			name: "hang up with a reason",
			call: func(ctx context.Context, r *restClient) error {
				return r.hangup(ctx, "crmlink-leg-1", "answered_elsewhere")
			},
			want: []string{"DELETE /channels/crmlink-leg-1?reason=answered_elsewhere"},
		},
		{
			name: "follow a channel that left Stasis",
			call: func(ctx context.Context, r *restClient) error { return r.subscribe(ctx, "crmlink", "channel:caller-1") },
			want: []string{"POST /applications/crmlink/subscription?eventSource=channel:caller-1"},
		},
	}
	for _, transport := range []string{TransportHTTP, TransportWebsocket} {
		for _, tc := range cases {
			t.Run(transport+"/"+tc.name, func(t *testing.T) {
				f := newFakeARI(t)
				r := newRESTClient(f.url(), "u", "p", time.Second, 4)
				if transport == TransportWebsocket {
					useFakeSocket(t, f, r)
				}
				require.NoError(t, tc.call(context.Background(), r))
				assert.Equal(t, tc.want, f.requests())
				want := 0
				if transport == TransportWebsocket {
					want = len(tc.want)
				}
				assert.Equal(t, want, f.socketRequests(), "requests over the websocket")
			})
		}
	}
}

func TestRESTNotFoundIsErrNotFound(t *testing.T) {
	for _, transport := range []string{TransportHTTP, TransportWebsocket} {
		t.Run(transport, func(t *testing.T) {
			f := newFakeARI(t)
			r := newRESTClient(f.url(), "u", "p", time.Second, 4)
			if transport == TransportWebsocket {
				useFakeSocket(t, f, r)
			}
			testNotFound(t, f, r)
		})
	}
}

func testNotFound(t *testing.T, f *fakeARI, r *restClient) {
	f.set("POST /channels/gone/continue", http.StatusNotFound, `{"message":"Channel not found"}`)

	err := r.continueIn(context.Background(), "gone", "ctx", "s", 1)
	require.ErrorIs(t, err, errNotFound)
	assert.Contains(t, err.Error(), "Channel not found")

	f.set("POST /channels/busy/answer", http.StatusConflict, `{"message":"Channel not in Stasis application"}`)
	err = r.answer(context.Background(), "busy")
	require.Error(t, err)
	assert.NotErrorIs(t, err, errNotFound)
}

// Every request carries the ARI user's credentials as basic auth (the header is built once).
func TestRESTSendsBasicAuth(t *testing.T) {
	type creds struct {
		user, pass string
		ok         bool
	}
	got := make(chan creds, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		got <- creds{u, p, ok}
		_, _ = w.Write([]byte("{}"))
	}))
	t.Cleanup(srv.Close)
	r := newRESTClient(srv.URL, "crmlink", "s3cr:et", time.Second, 4)
	require.NoError(t, r.answer(context.Background(), "caller-1"))
	require.NoError(t, r.ring(context.Background(), "caller-1"))
	for range 2 {
		assert.Equal(t, creds{"crmlink", "s3cr:et", true}, <-got)
	}
}

// Asterisk serves at most session_limit HTTP connections and drops the rest: however many
// requests run at once, the controller opens no more than its cap, and the others wait.
func TestRESTCapsConnectionsToARI(t *testing.T) {
	const maxConns, requests = 4, 24
	release := make(chan struct{})
	inFlight := make(chan struct{}, requests)
	var opened atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		inFlight <- struct{}{}
		<-release
		_, _ = w.Write([]byte("{}"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	r := newRESTClient(srv.URL, "u", "p", 5*time.Second, maxConns)

	var wg sync.WaitGroup
	errs := make(chan error, requests)
	for range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- r.answer(context.Background(), "c")
		}()
	}
	for range maxConns {
		<-inFlight
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int32(maxConns), opened.Load(), "connections opened for %d requests", requests)
}

// A request past its deadline is given up for real: the server sees it cancelled, nothing
// keeps running in the background.
func TestRESTRequestDeadlineCancelsTheRequest(t *testing.T) {
	cancelled := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		close(cancelled)
	}))
	t.Cleanup(srv.Close)
	r := newRESTClient(srv.URL, "u", "p", 100*time.Millisecond, 4)

	err := r.answer(context.Background(), "c")
	require.Error(t, err)
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the server never saw the request end")
	}
}

func TestPlainValue(t *testing.T) {
	cases := []struct {
		value string
		plain bool
	}{
		{"", true}, {"ROUTED", true}, {"owner_no_answer", true}, {"1001", true}, {"crmlink:crm_error", true},
		{"a,b", false}, {"a|b", false}, {`"q"`, false}, {"f(x)", false}, {"a b", false}, {`a\b`, false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.plain, plainValue(tc.value), tc.value)
	}
}
