package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/pbx/ari"
	"github.com/crmlink/crmlink/routing"
)

// The controller sets variables on the channel and continues it in the dialplan; the
// dialplan's fallback rings the operator and tags the INVITE with what it saw.
func TestStasisControllerSetsVariableAndContinues(t *testing.T) {
	ast := testrig.Asterisk(t)
	asked := make(chan routing.Call, 1)
	startController(t, ast, routing.DeciderFunc(func(_ context.Context, c routing.Call) routing.Decision {
		asked <- c
		return routing.Decision{Result: routing.Fallback, Reason: routing.ReasonNotFound, Source: routing.SourceCRM}
	}))
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)
	caller := newCaller(t, ast, "")

	call := dial(t, ast, caller, "200")

	c := <-asked
	assert.Equal(t, caller.User(), c.Caller, "the controller passes the caller's number")
	assert.Equal(t, "200", c.Called)
	in := nextIncoming(t, operator, callWait)
	assert.Equal(t, "FALLBACK", in.Header("X-CRMLINK-Result"))
	assert.Equal(t, "not_found", in.Header("X-CRMLINK-Reason"))
	assert.Equal(t, "crm", in.Header("X-CRMLINK-Source"))
	assert.Equal(t, caller.User(), in.From(), "the operator sees the caller's number")

	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, in.Answer(ctx))
	res, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
	assert.Equal(t, 200, res.StatusCode, "the caller is connected to the operator")
}

// The rig's Asterisk (22.10.1) answers ARI REST over the websocket: with transport auto the
// controller finds it at connect, and a call's requests go there; http keeps them on HTTP.
// Either way the call is handled.
func TestARITransportIsFoundAtConnect(t *testing.T) {
	for _, tc := range []struct{ transport, want string }{
		{ari.TransportAuto, ari.TransportWebsocket},
		{ari.TransportHTTP, ari.TransportHTTP},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			ast := testrig.Asterisk(t)
			ctl := startController(t, ast, routing.DeciderFunc(func(context.Context, routing.Call) routing.Decision {
				return routing.Decision{Result: routing.Fallback, Reason: routing.ReasonNotFound}
			}), func(o *ari.Options) { o.Transport = tc.transport })
			assert.Equal(t, tc.want, ctl.Transport())
			operator := newPhone(t, "100", "127.0.0.1", operatorPort)
			dial(t, ast, newCaller(t, ast, ""), "200")
			in := nextIncoming(t, operator, callWait)
			assert.Equal(t, "not_found", in.Header("X-CRMLINK-Reason"))
		})
	}
}

// Without a controller Stasis() fails at once and the dialplan sends the call to the
// fallback by itself: crmlink being down never loses a call.
func TestNoControllerCallLandsInFallback(t *testing.T) {
	ast := testrig.Asterisk(t)
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)
	caller := newCaller(t, ast, "")

	call := dial(t, ast, caller, "201")

	in := nextIncoming(t, operator, callWait)
	assert.Equal(t, "FAILED", in.Header("X-CRMLINK-Status"), "the dialplan saw STASISSTATUS=FAILED")
	assert.Empty(t, in.Header("X-CRMLINK-Result"), "nobody decided")
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, in.Answer(ctx))
	res, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
	assert.Equal(t, 200, res.StatusCode)
}
