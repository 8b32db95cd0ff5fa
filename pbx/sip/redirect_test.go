package sip

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/pbx/dialplan"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
	"github.com/crmlink/crmlink/routing"
)

// syncBuffer is a log sink safe for the goroutines of the code under test.
type syncBuffer = testrig.LogBuffer

type testRedirect struct {
	srv    *RedirectServer
	addr   string
	logs   *syncBuffer
	cancel context.CancelFunc
	errc   chan error
}

func startRedirect(t testing.TB, d routing.Decider, opts ...Option) *testRedirect {
	t.Helper()
	tr := &testRedirect{logs: &syncBuffer{}, errc: make(chan error, 1)}
	opts = append([]Option{WithLogger(zerolog.New(tr.logs))}, opts...)
	srv, err := NewRedirectServer(d, opts...)
	require.NoError(t, err)
	tr.srv = srv
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	tr.addr = conn.LocalAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	tr.cancel = cancel
	go func() { tr.errc <- srv.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-tr.errc:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
		srv.Close()
	})
	return tr
}

func (tr *testRedirect) target(called string) string { return "sip:" + called + "@" + tr.addr }

func newPhone(t *testing.T, user string) *siptest.Phone {
	t.Helper()
	p, err := siptest.NewPhone(context.Background(), siptest.PhoneOptions{User: user})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// callAndWait places a call and returns the final answer.
func callAndWait(t *testing.T, p *siptest.Phone, target string) (*siptest.Response, *siptest.Call) {
	t.Helper()
	ctx := testCtx(t)
	call, err := p.Call(ctx, target)
	require.NoError(t, err)
	res, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
	return res, call
}

func recordingDecider(d routing.Decision) (routing.Decider, <-chan routing.Call) {
	calls := make(chan routing.Call, 16)
	return routing.DeciderFunc(func(ctx context.Context, c routing.Call) routing.Decision {
		calls <- c
		return d
	}), calls
}

type contact struct{ uri, q string }

func contactsOf(res *siptest.Response) []contact {
	var out []contact
	for _, c := range res.Contacts {
		q, _ := c.Params.Get("q")
		out = append(out, contact{c.Address.String(), q})
	}
	return out
}

func crmlinkHeaders(res *siptest.Response) map[string]string {
	return map[string]string{
		dialplan.HeaderResult: res.Header(dialplan.HeaderResult),
		dialplan.HeaderReason: res.Header(dialplan.HeaderReason),
		dialplan.HeaderOwner:  res.Header(dialplan.HeaderOwner),
		dialplan.HeaderSource: res.Header(dialplan.HeaderSource),
	}
}

func TestRedirectAnswers(t *testing.T) {
	tests := []struct {
		name         string
		decision     routing.Decision
		opts         []Option
		wantStatus   int
		wantContacts []contact
		wantHeaders  map[string]string
		wantLog      string
	}{
		{
			name: "routed to two phones, q descending",
			decision: routing.Decision{
				Result: routing.Routed, Owner: 42, Source: routing.SourceIndex,
				Targets: []routing.Target{{Endpoint: "PJSIP/101"}, {Endpoint: "PJSIP/102"}},
			},
			wantStatus:   302,
			wantContacts: []contact{{"sip:101@127.0.0.1:5060", "1.0"}, {"sip:102@127.0.0.1:5060", "0.9"}},
			wantHeaders:  map[string]string{dialplan.HeaderResult: "ROUTED", dialplan.HeaderReason: "", dialplan.HeaderOwner: "42", dialplan.HeaderSource: "index"},
		},
		{
			name: "trunk target through a template with parameters",
			decision: routing.Decision{
				Result: routing.Routed, Owner: 7, Source: routing.SourceCRM,
				Targets: []routing.Target{{Endpoint: "PJSIP/+79161234567@trunk"}, {Endpoint: "SIP/+79161234567"}},
			},
			opts:         []Option{WithContactTemplate("sip:{user}@pbx.example.com:5080;transport=tcp")},
			wantStatus:   302,
			wantContacts: []contact{{"sip:+79161234567@pbx.example.com:5080;transport=tcp", "1.0"}},
			wantHeaders:  map[string]string{dialplan.HeaderResult: "ROUTED", dialplan.HeaderReason: "", dialplan.HeaderOwner: "7", dialplan.HeaderSource: "crm"},
		},
		{
			name:         "fallback to the fallback contact",
			decision:     routing.FallbackDecision(routing.ReasonNotFound),
			opts:         []Option{WithFallbackContact("sip:fallback@127.0.0.1:5060")},
			wantStatus:   302,
			wantContacts: []contact{{"sip:fallback@127.0.0.1:5060", ""}},
			wantHeaders:  map[string]string{dialplan.HeaderResult: "FALLBACK", dialplan.HeaderReason: "not_found", dialplan.HeaderOwner: "", dialplan.HeaderSource: ""},
		},
		{
			name:         "fallback contact carries the reason",
			decision:     routing.FallbackDecision(routing.ReasonTimeout),
			opts:         []Option{WithFallbackContact("sip:fallback-{reason}@127.0.0.1:5060")},
			wantStatus:   302,
			wantContacts: []contact{{"sip:fallback-timeout@127.0.0.1:5060", ""}},
			wantHeaders:  map[string]string{dialplan.HeaderResult: "FALLBACK", dialplan.HeaderReason: "timeout", dialplan.HeaderOwner: "", dialplan.HeaderSource: ""},
		},
		{
			name:         "fallback contact carries reason, owner and source",
			decision:     routing.Decision{Result: routing.Fallback, Reason: routing.ReasonOwnerUnavailable, Owner: 42, Source: routing.SourceCache},
			opts:         []Option{WithFallbackContact("sip:fallback-{reason}-{owner}-{source}@127.0.0.1:5060")},
			wantStatus:   302,
			wantContacts: []contact{{"sip:fallback-owner_unavailable-42-cache@127.0.0.1:5060", ""}},
			wantHeaders:  map[string]string{dialplan.HeaderResult: "FALLBACK", dialplan.HeaderReason: "owner_unavailable", dialplan.HeaderOwner: "42", dialplan.HeaderSource: "cache"},
		},
		{
			name:         "no owner: the owner and source places stay empty",
			decision:     routing.FallbackDecision(routing.ReasonNotFound),
			opts:         []Option{WithFallbackContact("sip:fallback-{reason}-{owner}-{source}@127.0.0.1:5060")},
			wantStatus:   302,
			wantContacts: []contact{{"sip:fallback-not_found--@127.0.0.1:5060", ""}},
			wantHeaders:  map[string]string{dialplan.HeaderResult: "FALLBACK", dialplan.HeaderReason: "not_found", dialplan.HeaderOwner: "", dialplan.HeaderSource: ""},
		},
		{
			name:        "fallback without a fallback contact is 480",
			decision:    routing.Decision{Result: routing.Fallback, Reason: routing.ReasonOwnerUnavailable, Owner: 42, Source: routing.SourceCache},
			wantStatus:  480,
			wantHeaders: map[string]string{dialplan.HeaderResult: "FALLBACK", dialplan.HeaderReason: "owner_unavailable", dialplan.HeaderOwner: "42", dialplan.HeaderSource: "cache"},
		},
		{
			name: "CRLF in CRM data: fallback, nothing injected",
			decision: routing.Decision{
				Result: routing.Routed, Owner: 42, Reason: "x\r\nX-Evil: 1", Source: "index\r\nX-Evil: 2",
				Targets: []routing.Target{
					{Endpoint: "PJSIP/101\r\nX-Evil: 3"},
					{Endpoint: "PJSIP/10 2"},
					{Endpoint: "PJSIP/<sip:evil@x>"},
					{Endpoint: "PJSIP/101;transport=tcp"},
					{Endpoint: "101"},
				},
			},
			wantStatus:  480,
			wantHeaders: map[string]string{dialplan.HeaderResult: "FALLBACK", dialplan.HeaderReason: "no_owner", dialplan.HeaderOwner: "42", dialplan.HeaderSource: ""},
			wantLog:     "decision data rejected",
		},
		{
			name: "a bad target among good ones is dropped",
			decision: routing.Decision{
				Result: routing.Routed, Owner: 42,
				Targets: []routing.Target{{Endpoint: "PJSIP/1\r\n01"}, {Endpoint: "PJSIP/102"}},
			},
			wantStatus:   302,
			wantContacts: []contact{{"sip:102@127.0.0.1:5060", "1.0"}},
			wantHeaders:  map[string]string{dialplan.HeaderResult: "ROUTED", dialplan.HeaderReason: "", dialplan.HeaderOwner: "42", dialplan.HeaderSource: ""},
			wantLog:      "dropped",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, calls := recordingDecider(tt.decision)
			tr := startRedirect(t, d, tt.opts...)
			caller := newPhone(t, "79161234567")

			res, call := callAndWait(t, caller, tr.target("4951234567"))
			assert.Equal(t, tt.wantStatus, res.StatusCode)
			assert.Equal(t, tt.wantContacts, contactsOf(res))
			assert.Equal(t, tt.wantHeaders, crmlinkHeaders(res))
			assert.NotContains(t, res.Msg.String(), "X-Evil")
			assert.Equal(t, routing.Call{Caller: "79161234567", Called: "4951234567", ChannelID: call.CallID()}, <-calls)
			assert.Contains(t, tr.logs.String(), "SIP call redirected")
			if tt.wantLog != "" {
				assert.Contains(t, tr.logs.String(), tt.wantLog)
			}
		})
	}
}

func TestRedirectOtherMethods(t *testing.T) {
	d, calls := recordingDecider(routing.Decision{})
	tr := startRedirect(t, d)
	p := newPhone(t, "79161234567")
	ctx := testCtx(t)

	res, err := p.Options(ctx, "sip:"+tr.addr)
	require.NoError(t, err)
	assert.Equal(t, 200, res.StatusCode)
	assert.Equal(t, allowedMethods, res.Header("Allow"))

	for method, want := range map[sipmsg.RequestMethod]int{
		sipmsg.REGISTER: 405, sipmsg.SUBSCRIBE: 405, "FOO": 501, sipmsg.BYE: 481, sipmsg.CANCEL: 481,
	} {
		res, err := p.Send(ctx, method, tr.target("200"))
		require.NoError(t, err, method)
		assert.Equal(t, want, res.StatusCode, method)
		if want == 405 {
			assert.Equal(t, allowedMethods, res.Header("Allow"))
		}
	}

	to := &sipmsg.ToHeader{Address: sipmsg.Uri{Scheme: "sip", User: "200", Host: "127.0.0.1"}}
	to.Params.Add("tag", "already-in-a-dialog")
	call, err := p.Call(ctx, tr.target("200"), to)
	require.NoError(t, err)
	reinvite, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
	assert.Equal(t, 481, reinvite.StatusCode, "re-INVITE: we keep no dialogs")
	assert.Empty(t, calls)
}

func TestSlowDecisionDoesNotBlockOthers(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	d := routing.DeciderFunc(func(ctx context.Context, c routing.Call) routing.Decision {
		if c.Caller == "slow" {
			close(entered)
			<-release
		}
		return routing.Decision{Result: routing.Routed, Owner: 1, Targets: []routing.Target{{Endpoint: "PJSIP/" + c.Caller}}}
	})
	tr := startRedirect(t, d)
	ctx := testCtx(t)

	slowCall, err := newPhone(t, "slow").Call(ctx, tr.target("200"))
	require.NoError(t, err)
	<-entered

	start := time.Now()
	res, _ := callAndWait(t, newPhone(t, "fast"), tr.target("200"))
	assert.Less(t, time.Since(start), 100*time.Millisecond, "answered while another decision hangs")
	assert.Equal(t, 302, res.StatusCode)
	require.Len(t, res.Contacts, 1)
	assert.Equal(t, "fast", res.Contacts[0].Address.User)

	require.NoError(t, slowCall.WaitProvisional(ctx, 100), "sipgo sends 100 Trying while the decision runs")
	close(release)
	res, err = slowCall.WaitAnswer(ctx)
	require.NoError(t, err)
	assert.Equal(t, 302, res.StatusCode)
	require.Len(t, res.Contacts, 1)
	assert.Equal(t, "slow", res.Contacts[0].Address.User)
}

func TestCallerCancelsWhileDeciding(t *testing.T) {
	entered, sawCancel := make(chan struct{}), make(chan error, 1)
	d := routing.DeciderFunc(func(ctx context.Context, c routing.Call) routing.Decision {
		close(entered)
		<-ctx.Done()
		sawCancel <- ctx.Err()
		return routing.FallbackDecision(routing.ReasonTimeout)
	})
	tr := startRedirect(t, d)
	ctx := testCtx(t)
	call, err := newPhone(t, "79161234567").Call(ctx, tr.target("200"))
	require.NoError(t, err)
	<-entered
	require.NoError(t, call.WaitProvisional(ctx, 100))

	require.NoError(t, call.Hangup(ctx))
	assert.ErrorIs(t, <-sawCancel, context.Canceled, "the decision's context ends with the CANCEL")
	res, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
	assert.Equal(t, 487, res.StatusCode)
}

func TestDecideTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	d := routing.DeciderFunc(func(ctx context.Context, c routing.Call) routing.Decision {
		<-release // ignores ctx
		return routing.Decision{Result: routing.Routed, Targets: []routing.Target{{Endpoint: "PJSIP/101"}}}
	})
	tr := startRedirect(t, d, WithDecideTimeout(300*time.Millisecond))
	start := time.Now()
	res, _ := callAndWait(t, newPhone(t, "79161234567"), tr.target("200"))
	assert.Equal(t, 480, res.StatusCode)
	assert.Equal(t, "timeout", res.Header(dialplan.HeaderReason))
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Contains(t, tr.logs.String(), "overran")
}

func TestGracefulStop(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	d := routing.DeciderFunc(func(ctx context.Context, c routing.Call) routing.Decision {
		if c.Caller == "first" {
			close(entered)
			<-release
		}
		return routing.Decision{Result: routing.Routed, Targets: []routing.Target{{Endpoint: "PJSIP/101"}}}
	})
	tr := startRedirect(t, d)
	draining := make(chan struct{})
	tr.srv.testHookDrain = func() { close(draining) }
	ctx := testCtx(t)

	first, err := newPhone(t, "first").Call(ctx, tr.target("200"))
	require.NoError(t, err)
	<-entered
	tr.cancel()
	<-draining

	res, _ := callAndWait(t, newPhone(t, "second"), tr.target("200"))
	assert.Equal(t, 503, res.StatusCode, "no new calls while stopping")

	close(release)
	res, err = first.WaitAnswer(ctx)
	require.NoError(t, err)
	assert.Equal(t, 302, res.StatusCode, "the call in progress is still answered")
	select {
	case err := <-tr.errc:
		assert.NoError(t, err)
		tr.errc <- err
	case <-ctx.Done():
		t.Fatal("Serve did not return")
	}
}

func TestNewRedirectServerRejects(t *testing.T) {
	d, _ := recordingDecider(routing.Decision{})
	for name, opts := range map[string][]Option{
		"no placeholder":        {WithContactTemplate("sip:101@127.0.0.1")},
		"two placeholders":      {WithContactTemplate("sip:{user}@{user}")},
		"placeholder in host":   {WithContactTemplate("sip:x@{user}.example.com")},
		"placeholder with more": {WithContactTemplate("sip:a{user}@127.0.0.1")},
		"not sip":               {WithContactTemplate("http://{user}@x")},
		"no host":               {WithContactTemplate("sip:{user}@")},
		"spaces":                {WithContactTemplate("sip:{user}@127.0.0.1 ;x")},
		"uri headers":           {WithContactTemplate("sip:{user}@127.0.0.1?X-A=1")},
		"bad fallback":          {WithFallbackContact("fallback")},
		"fallback with crlf":    {WithFallbackContact("sip:a@b\r\nX: 1")},
		"fallback placeholder":  {WithFallbackContact("sip:{user}@b")},
		"zero timeout":          {WithDecideTimeout(0)},
		"invalid prefix":        {WithAllowedNetworks(netip.Prefix{})},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewRedirectServer(d, opts...)
			assert.Error(t, err)
		})
	}
	_, err := NewRedirectServer(nil)
	assert.Error(t, err)

	srv, err := NewRedirectServer(d)
	require.NoError(t, err)
	assert.ErrorContains(t, srv.ListenAndServe(context.Background(), "sctp", "127.0.0.1:0"), "use udp or tcp")
	require.NoError(t, srv.Close())
}

func TestListenAndServe(t *testing.T) {
	d, _ := recordingDecider(routing.FallbackDecision(routing.ReasonNotFound))
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			srv, err := NewRedirectServer(d)
			require.NoError(t, err)
			defer srv.Close()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			assert.NoError(t, srv.ListenAndServe(ctx, network, "127.0.0.1:0"), "returns nil once ctx is done")
		})
	}
}

func TestQValue(t *testing.T) {
	var got []string
	for i := range maxContacts {
		got = append(got, qValue(i))
	}
	assert.Equal(t, []string{"1.0", "0.9", "0.8", "0.7", "0.6", "0.5", "0.4", "0.3"}, got)
	assert.True(t, strings.HasPrefix(qValue(maxContacts-1), "0."))
}
