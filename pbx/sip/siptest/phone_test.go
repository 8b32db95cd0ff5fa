package siptest

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newTestPhone(t *testing.T, user string) *Phone {
	t.Helper()
	p, err := NewPhone(context.Background(), PhoneOptions{User: user})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func target(p *Phone) string {
	u := p.URI()
	return u.String()
}

// answeredCall sets up alice → bob, answered and ACKed.
func answeredCall(t *testing.T, ctx context.Context) (*Call, *IncomingCall) {
	t.Helper()
	alice, bob := newTestPhone(t, "alice"), newTestPhone(t, "bob")
	call, err := alice.Call(ctx, target(bob))
	require.NoError(t, err)

	var in *IncomingCall
	select {
	case in = <-bob.Incoming():
	case <-ctx.Done():
		t.Fatal("no incoming call")
	}
	assert.Equal(t, "alice", in.From())
	assert.Equal(t, "bob", in.To())
	assert.Equal(t, call.CallID(), in.CallID())
	assert.Equal(t, "application/sdp", in.Header("Content-Type"))
	assert.Contains(t, string(in.Request().Body()), "m=audio ")

	require.NoError(t, in.Ringing())
	require.NoError(t, call.WaitProvisional(ctx, 180))
	require.NoError(t, in.Answer(ctx), "answered and ACKed")

	res, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
	assert.Equal(t, 200, res.StatusCode)
	assert.Contains(t, string(res.Msg.Body()), "a=rtpmap:0 PCMU/8000")
	require.NoError(t, call.Ack(ctx))
	return call, in
}

func TestPhoneToPhoneCalleeHangsUp(t *testing.T) {
	ctx := testCtx(t)
	call, in := answeredCall(t, ctx)

	require.NoError(t, in.Hangup(ctx))
	select {
	case <-call.Done():
	case <-ctx.Done():
		t.Fatal("caller did not see the BYE")
	}
	assert.Equal(t, EndRemoteBye, call.EndCause())
	assert.Equal(t, EndLocal, in.EndCause())
	assert.NoError(t, call.Hangup(ctx), "hanging up an ended call is a no-op")
}

func TestPhoneToPhoneCallerHangsUp(t *testing.T) {
	ctx := testCtx(t)
	call, in := answeredCall(t, ctx)

	require.NoError(t, call.Hangup(ctx))
	select {
	case <-in.Done():
	case <-ctx.Done():
		t.Fatal("callee did not see the BYE")
	}
	assert.Equal(t, EndRemoteBye, in.EndCause())
	assert.Equal(t, EndLocal, call.EndCause())
}

func TestPhoneToPhoneCancelBeforeAnswer(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newTestPhone(t, "alice"), newTestPhone(t, "bob")
	call, err := alice.Call(ctx, target(bob))
	require.NoError(t, err)
	in := <-bob.Incoming()
	require.NoError(t, in.Ringing())
	require.NoError(t, call.WaitProvisional(ctx, 180))

	require.NoError(t, call.Hangup(ctx))
	select {
	case <-in.Done():
	case <-ctx.Done():
		t.Fatal("callee did not see the CANCEL")
	}
	assert.Equal(t, EndRemoteCancel, in.EndCause())
	assert.Error(t, in.Answer(ctx), "too late to answer")

	res, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
	assert.Equal(t, 487, res.StatusCode)
	assert.Equal(t, EndLocal, call.EndCause())
}

func TestPhoneToPhoneReject(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newTestPhone(t, "alice"), newTestPhone(t, "bob")
	call, err := alice.Call(ctx, target(bob))
	require.NoError(t, err)
	in := <-bob.Incoming()
	require.NoError(t, in.Reject(486))

	res, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
	assert.Equal(t, 486, res.StatusCode)
	<-call.Done()
	assert.Equal(t, EndRejected, call.EndCause())
	assert.Equal(t, EndRejected, in.EndCause())
	assert.Error(t, call.WaitProvisional(ctx, 180), "final came first")
}

func TestPhoneAnswersRefreshes(t *testing.T) {
	ctx := testCtx(t)
	call, in := answeredCall(t, ctx)

	for _, method := range []sip.RequestMethod{sip.INVITE, sip.UPDATE} {
		req, err := call.inDialog(method)
		require.NoError(t, err)
		req.SetBody(call.p.sdp)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res, err := call.p.cli.Do(ctx, req)
		require.NoError(t, err, method)
		assert.Equal(t, 200, res.StatusCode, method)
		assert.Equal(t, string(in.p.sdp), string(res.Body()), "%s answered with the same SDP", method)
		if method == sip.INVITE {
			ack, err := call.inDialog(sip.ACK)
			require.NoError(t, err)
			ack.CSeq().SeqNo = req.CSeq().SeqNo
			require.NoError(t, call.p.cli.WriteRequest(ack))
		}
	}
	assert.Equal(t, EndNone, in.EndCause(), "the call goes on")
	require.NoError(t, call.Hangup(ctx))
}

func TestPhoneAnswersOutOfDialogRequests(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newTestPhone(t, "alice"), newTestPhone(t, "bob")

	res, err := alice.Options(ctx, "sip:"+bob.Addr().String())
	require.NoError(t, err)
	assert.Equal(t, 200, res.StatusCode)
	assert.Contains(t, res.Header("Allow"), "INVITE")

	for method, want := range map[sip.RequestMethod]int{
		sip.BYE: 481, sip.CANCEL: 481, sip.NOTIFY: 200, sip.SUBSCRIBE: 405,
	} {
		res, err := alice.Send(ctx, method, target(bob))
		require.NoError(t, err, method)
		assert.Equal(t, want, res.StatusCode, method)
	}
}

func TestPhoneFixedPort(t *testing.T) {
	probe, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	port := probe.LocalAddr().(*net.UDPAddr).Port
	require.NoError(t, probe.Close())

	p, err := NewPhone(context.Background(), PhoneOptions{User: "101", BindPort: port})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	assert.Equal(t, netip.MustParseAddrPort("127.0.0.1:"+strconv.Itoa(port)), p.Addr())
	assert.Equal(t, "sip:101@127.0.0.1:"+strconv.Itoa(port), target(p))

	_, err = NewPhone(context.Background(), PhoneOptions{User: "102", BindPort: port})
	assert.Error(t, err, "port taken")

	// The phone's requests leave from its port: the callee sees it as the INVITE's source.
	other := newTestPhone(t, "other")
	ctx := testCtx(t)
	_, err = p.Call(ctx, target(other))
	require.NoError(t, err)
	in := <-other.Incoming()
	assert.Equal(t, "127.0.0.1:"+strconv.Itoa(port), in.Request().Source())
	assert.Equal(t, port, in.Request().Via().Port)
	assert.Equal(t, port, in.Request().Contact().Address.Port)
}

func TestPhoneOptionsValidation(t *testing.T) {
	for _, o := range []PhoneOptions{
		{User: ""},
		{User: "a b"},
		{User: "101", BindHost: "localhost"},
		{User: "101", BindHost: "0.0.0.0"},
		{User: "101", BindPort: 70000},
	} {
		_, err := NewPhone(context.Background(), o)
		assert.Error(t, err, "%+v", o)
	}
}

func TestPhoneClose(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := newTestPhone(t, "alice"), newTestPhone(t, "bob")
	call, err := alice.Call(ctx, target(bob))
	require.NoError(t, err)
	<-bob.Incoming()

	require.NoError(t, alice.Close())
	<-call.Done()
	assert.Equal(t, EndPhoneClosed, call.EndCause())
	_, err = call.WaitAnswer(ctx)
	assert.Error(t, err)
	_, err = alice.Call(ctx, target(bob))
	assert.Error(t, err, "closed phones place no calls")
	require.NoError(t, alice.Close(), "Close twice is fine")
}

func TestCallRejectsBadInput(t *testing.T) {
	ctx := testCtx(t)
	p := newTestPhone(t, "alice")
	_, err := p.Call(ctx, "tel:+100")
	assert.Error(t, err)
	_, err = p.Call(ctx, "sip:bob@127.0.0.1:1", sip.NewHeader("Via", "x"))
	assert.Error(t, err)
}

// registrar is a minimal sipgo REGISTER server that challenges once, then accepts.
func registrar(t *testing.T) (string, <-chan *sip.Request) {
	t.Helper()
	ua, err := sipgo.NewUA()
	require.NoError(t, err)
	srv, err := sipgo.NewServer(ua)
	require.NoError(t, err)
	got := make(chan *sip.Request, 8)
	srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		got <- req
		if req.GetHeader("Authorization") == nil {
			res := sip.NewResponseFromRequest(req, sip.StatusUnauthorized, "Unauthorized", nil)
			res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="rig", nonce="n0nce", algorithm=MD5, qop="auth"`))
			assert.NoError(t, tx.Respond(res))
			return
		}
		assert.NoError(t, tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)))
	})
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.ServeUDP(conn)
	t.Cleanup(func() { conn.Close(); ua.Close() })
	return "sip:" + conn.LocalAddr().String(), got
}

func TestPhoneRegisters(t *testing.T) {
	ctx := testCtx(t)
	reg, got := registrar(t)
	p, err := NewPhone(ctx, PhoneOptions{User: "101", Password: "secret"})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })

	res, err := p.Register(ctx, reg, 5*time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 200, res.StatusCode)

	first, second := <-got, <-got
	assert.Equal(t, "300", first.GetHeader("Expires").Value())
	want := p.URI()
	assert.Equal(t, want.String(), first.Contact().Address.String())
	assert.Equal(t, "101", first.To().Address.User)
	assert.Contains(t, second.GetHeader("Authorization").Value(), `username="101"`)
	assert.Equal(t, first.CallID().Value(), second.CallID().Value(), "one Call-ID per phone")
	assert.Greater(t, second.CSeq().SeqNo, first.CSeq().SeqNo)

	res, err = p.Unregister(ctx, reg)
	require.NoError(t, err)
	assert.Equal(t, 200, res.StatusCode)
	third := <-got
	assert.Equal(t, "0", third.GetHeader("Expires").Value())
	assert.Equal(t, first.CallID().Value(), third.CallID().Value())
	assert.Greater(t, third.CSeq().SeqNo, second.CSeq().SeqNo)
}
