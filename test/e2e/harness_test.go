// Package e2e places real SIP calls through the rig's Asterisk 22 (make sandbox-up) and
// checks what the phones and the dialplan saw.
package e2e

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/pbx/ari"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
	"github.com/crmlink/crmlink/routing"
)

func TestMain(m *testing.M) { testrig.Main(m) }

// operatorPort is where asterisk-conf/pjsip.conf expects the operator desk (100), the
// fallback ring group.
const operatorPort = 5170

// callWait bounds every wait on a SIP event in these tests.
const callWait = 10 * time.Second

func testLogger(t *testing.T) zerolog.Logger {
	if os.Getenv("CRMLINK_TEST_LOG") != "" {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	}
	return zerolog.Nop()
}

// ariTransport is asterisk.ari.transport for the tests: CRMLINK_TEST_ARI_TRANSPORT (auto,
// websocket, http) when set, so that the suite runs once per transport; else def.
func ariTransport(def string) string {
	if v := os.Getenv("CRMLINK_TEST_ARI_TRANSPORT"); v != "" {
		return v
	}
	return def
}

// ariRinging is asterisk.ari.ringing for the tests: CRMLINK_TEST_ARI_RINGING (bridge,
// dialplan) when set; else def.
func ariRinging(def string) string {
	if v := os.Getenv("CRMLINK_TEST_ARI_RINGING"); v != "" {
		return v
	}
	return def
}

// startController runs crmlink's Stasis controller against the rig until the test ends,
// and returns once Asterisk has the application registered.
func startController(t *testing.T, ast testrig.AsteriskRig, d routing.Decider, tweak ...func(*ari.Options)) *ari.Controller {
	t.Helper()
	opts := ari.Options{
		URL: ast.ARIURL, WSURL: ast.WSURL, Username: ast.User, Password: ast.Password,
		Application:     "crmlink",
		Decider:         d,
		FallbackContext: "crmlink-fallback",
		LookupTimeout:   time.Second,
		RingTimeout:     5 * time.Second,
		Logger:          testLogger(t),
	}
	opts.Transport, opts.Ringing = ariTransport(opts.Transport), ariRinging(opts.Ringing)
	for _, f := range tweak {
		f(&opts)
	}
	ctl, err := ari.New(opts)
	require.NoError(t, err)
	testrig.Run(t, "the Stasis controller", ctl.Run, nil)
	testrig.WaitFor(t, 10*time.Second, "Stasis application crmlink registered", func() bool {
		return ctl.Connected() && ast.AppRegistered("crmlink")
	})
	return ctl
}

// newPhone starts a test phone that lives until the test ends.
func newPhone(t *testing.T, user, host string, port int) *siptest.Phone {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := siptest.NewPhone(ctx, siptest.PhoneOptions{User: user, BindHost: host, BindPort: port, Logger: testLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); _ = p.Close() })
	return p
}

var callerSeq atomic.Int64

// newCaller is a phone on the trunk's address with a caller number of its own, so calls of
// different tests never share a number (nor a cached owner).
func newCaller(t *testing.T, ast testrig.AsteriskRig, number string) *siptest.Phone {
	t.Helper()
	if number == "" {
		number = fmt.Sprintf("8495%07d", 1000000+callerSeq.Add(1)+time.Now().UnixNano()%1000000)
	}
	return newPhone(t, number, ast.TrunkHost, 0)
}

// dial calls an extension of [from-trunk] through the rig's Asterisk.
func dial(t *testing.T, ast testrig.AsteriskRig, from *siptest.Phone, exten string) *siptest.Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	c, err := from.Call(ctx, fmt.Sprintf("sip:%s@%s:%d", exten, ast.SIPHost, ast.SIPPort))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = c.Hangup(ctx)
	})
	return c
}

// nextIncoming waits for the phone to ring; like a real phone it answers 180 Ringing.
func nextIncoming(t *testing.T, p *siptest.Phone, within time.Duration) *siptest.IncomingCall {
	t.Helper()
	select {
	case in := <-p.Incoming():
		require.NoError(t, in.Ringing())
		return in
	case <-time.After(within):
		t.Fatalf("phone %s did not ring within %s", p.User(), within)
		return nil
	}
}

// notRung asserts the phone has not rung so far. Call it after an event that proves the
// decision was made (the fallback phone rang): a manager's phone would have rung before.
func notRung(t *testing.T, p *siptest.Phone) {
	t.Helper()
	select {
	case in := <-p.Incoming():
		t.Fatalf("phone %s rang (from %s) but should not have", p.User(), in.From())
	default:
	}
}
