package e2e

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/CyCoreSystems/ari/v6/client/native"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
)

// ariExten is a [from-trunk] number wired to Stasis(crmlink).
const ariExten = "200"

// expectFallback waits for the operator desk to ring and checks why the call came there.
func expectFallback(t *testing.T, operator *siptest.Phone, reason string, owner int64) *siptest.IncomingCall {
	t.Helper()
	in := nextIncoming(t, operator, callWait)
	assert.Equal(t, "FALLBACK", in.Header("X-CRMLINK-Result"))
	assert.Equal(t, reason, in.Header("X-CRMLINK-Reason"), "CRMLINK_REASON the dialplan saw")
	if owner != 0 {
		assert.Equal(t, strconv.FormatInt(owner, 10), in.Header("X-CRMLINK-Owner"))
	} else {
		assert.Empty(t, in.Header("X-CRMLINK-Owner"))
	}
	return in
}

// answerAndCheckBridged answers a ringing manager phone and checks the caller is connected
// with CRMLINK_* set on its channel.
func answerAndCheckBridged(t *testing.T, s *stack, in *siptest.IncomingCall, call *siptest.Call, caller string, owner int64, source string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, in.Answer(ctx))
	res, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode, "the caller is answered once the manager picks up")
	for name, want := range map[string]string{
		"CRMLINK_RESULT": "ROUTED", "CRMLINK_OWNER": strconv.FormatInt(owner, 10), "CRMLINK_SOURCE": source, "CRMLINK_REASON": "",
	} {
		got, err := s.ast.CallerChannelVar(caller, name)
		require.NoError(t, err)
		assert.Equal(t, want, got, name)
	}
}

func TestARIKnownCallerRingsOwnerAndIsBridged(t *testing.T) {
	s := startStack(t)
	anna := managerPhone(t, s.ast, "101")
	caller := newCaller(t, s.ast, annaClient)

	call := dial(t, s.ast, caller, ariExten)

	in := nextIncoming(t, anna, callWait)
	assert.Equal(t, annaClient, in.From(), "the manager sees the client's number")
	answerAndCheckBridged(t, s, in, call, annaClient, annaUser, "crm")
	expectCounted(t, s, "ROUTED", "")

	// The manager hangs up: the client's side ends too.
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, in.Hangup(ctx))
	select {
	case <-call.Done():
	case <-ctx.Done():
		t.Fatal("the caller was not hung up after the manager hung up")
	}
}

func TestARIOwnerWithTwoPhonesFirstAnswerWins(t *testing.T) {
	s := startStack(t)
	desk := managerPhone(t, s.ast, "102")
	soft := managerPhone(t, s.ast, "103")
	caller := newCaller(t, s.ast, borisClient)

	call := dial(t, s.ast, caller, ariExten)

	inDesk := nextIncoming(t, desk, callWait)
	inSoft := nextIncoming(t, soft, callWait)
	answerAndCheckBridged(t, s, inSoft, call, borisClient, borisUser, "crm")
	select {
	case <-inDesk.Done():
	case <-time.After(callWait):
		t.Fatal("the desk phone kept ringing after the softphone answered")
	}
	assert.Equal(t, siptest.EndRemoteCancel, inDesk.EndCause(), "the desk phone got a CANCEL")
}

func TestARICRMHangsFallbackWithinLookupTimeout(t *testing.T) {
	s := startStack(t)
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)
	anna := managerPhone(t, s.ast, "101")
	s.crm.HangAll(true)
	t.Cleanup(func() { s.crm.HangAll(false) })
	caller := newCaller(t, s.ast, annaClient)

	start := time.Now()
	dial(t, s.ast, caller, ariExten)
	expectFallback(t, operator, "timeout", 0)
	elapsed := time.Since(start)

	assert.LessOrEqual(t, elapsed, lookupTimeout+100*time.Millisecond, "fallback no later than lookup_timeout + 100 ms")
	notRung(t, anna)
}

func TestARICRMErrorsFallBackWithCRMError(t *testing.T) {
	for _, status := range []int{500, 401, 429} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			s := startStack(t)
			operator := newPhone(t, "100", "127.0.0.1", operatorPort)
			s.crm.FailNext(1000, status)
			caller := newCaller(t, s.ast, annaClient)

			dial(t, s.ast, caller, ariExten)

			expectFallback(t, operator, "crm_error", 0)
		})
	}
}

func TestARINotFoundAndNoOwner(t *testing.T) {
	cases := []struct {
		name, number, reason string
		owner                int64
	}{
		{"unknown number (204)", unknownNum, "not_found", 0},
		{"contact without responsible", orphanClient, "no_owner", 0},
		{"responsible without phones", danaClient, "no_owner", danaUser},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := startStack(t)
			operator := newPhone(t, "100", "127.0.0.1", operatorPort)
			dial(t, s.ast, newCaller(t, s.ast, c.number), ariExten)
			expectFallback(t, operator, c.reason, c.owner)
		})
	}
}

func TestARIManagerUnavailable(t *testing.T) {
	t.Run("off schedule: nobody rings", func(t *testing.T) {
		s := startStack(t)
		operator := newPhone(t, "100", "127.0.0.1", operatorPort)
		vera := managerPhone(t, s.ast, "104")
		dial(t, s.ast, newCaller(t, s.ast, veraClient), ariExten)
		expectFallback(t, operator, "owner_unavailable", veraUser)
		notRung(t, vera)
	})
	t.Run("phone not registered: nobody rings", func(t *testing.T) {
		s := startStack(t)
		operator := newPhone(t, "100", "127.0.0.1", operatorPort)
		dial(t, s.ast, newCaller(t, s.ast, glebClient), ariExten)
		expectFallback(t, operator, "owner_unavailable", glebUser)
	})
	t.Run("phone unregistered since the last presence refresh: owner_unavailable", func(t *testing.T) {
		s := startStack(t)
		expectOwnerLoggedOutUnavailable(t, s, ariExten)
		// The router said ROUTED (its presence was stale); the call got the fallback.
		expectCounted(t, s, "FALLBACK", "owner_unavailable")
	})
	t.Run("status check off: the off-schedule manager rings", func(t *testing.T) {
		s := startStack(t, func(c *config.Config) { c.Routing.CheckManagerStatus = false })
		vera := managerPhone(t, s.ast, "104")
		call := dial(t, s.ast, newCaller(t, s.ast, veraClient), ariExten)
		in := nextIncoming(t, vera, callWait)
		answerAndCheckBridged(t, s, in, call, veraClient, veraUser, "crm")
	})
}

func TestARIOwnerNoAnswerFallsBack(t *testing.T) {
	s := startStack(t, func(c *config.Config) { c.Routing.RingTimeout = 2 * time.Second })
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)
	anna := managerPhone(t, s.ast, "101")

	dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)

	in := nextIncoming(t, anna, callWait)
	fb := expectFallback(t, operator, "owner_no_answer", annaUser)
	assert.Equal(t, "crm", fb.Header("X-CRMLINK-Source"))
	expectCounted(t, s, "FALLBACK", "owner_no_answer")
	select {
	case <-in.Done():
	case <-time.After(callWait):
		t.Fatal("the manager's phone kept ringing after the ring timeout")
	}
}

func TestARISecondCallFromSameNumberMakesNoCRMRequest(t *testing.T) {
	s := startStack(t)
	anna := managerPhone(t, s.ast, "101")

	first := dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)
	in := nextIncoming(t, anna, callWait)
	answerAndCheckBridged(t, s, in, first, annaClient, annaUser, "crm")
	hangupBoth(t, in, first)
	waitCallLogged(t, s, 1)
	s.crm.ResetCounters()

	second := dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)
	in = nextIncoming(t, anna, callWait)
	answerAndCheckBridged(t, s, in, second, annaClient, annaUser, "cache")
	assert.Empty(t, s.crm.RequestCounts(), "the second call asked amoCRM nothing")
}

func TestARIResponsibleChangedNextCallRingsNewManager(t *testing.T) {
	s := startStack(t)
	anna := managerPhone(t, s.ast, "101")
	gleb := managerPhone(t, s.ast, "105")

	first := dial(t, s.ast, newCaller(t, s.ast, movingClient), ariExten)
	in := nextIncoming(t, anna, callWait)
	answerAndCheckBridged(t, s, in, first, movingClient, annaUser, "crm")
	hangupBoth(t, in, first)
	waitCallLogged(t, s, 1)

	// A head of sales hands the client to Gleb in amoCRM; amoCRM sends its webhook.
	res, err := s.crm.SetResponsible(context.Background(), sandbox.ResponsibleUpdate{Entity: "contact", ID: 2007, ResponsibleUserID: glebUser, ModifiedUserID: annaUser})
	require.NoError(t, err)
	require.NotNil(t, res.Webhook)
	require.Equal(t, 200, res.Webhook.Status, "crmlink accepted the webhook: %s", res.Webhook.Error)
	s.crm.ResetCounters()

	second := dial(t, s.ast, newCaller(t, s.ast, movingClient), ariExten)
	in = nextIncoming(t, gleb, callWait)
	answerAndCheckBridged(t, s, in, second, movingClient, glebUser, "index")
	assert.Empty(t, s.crm.RequestCounts(), "the new owner came from the webhook, not from a lookup")
	notRung(t, anna)
}

// hangupBoth ends a bridged test call from the manager's side and waits for both ends.
func hangupBoth(t *testing.T, in *siptest.IncomingCall, call *siptest.Call) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, in.Hangup(ctx))
	select {
	case <-call.Done():
	case <-ctx.Done():
		t.Fatal("the caller was not hung up")
	}
}

// waitCallLogged waits until the event path has written n call notes, so that what it asks
// amoCRM is over before a test counts call-path requests.
func waitCallLogged(t *testing.T, s *stack, n int) {
	t.Helper()
	waitCreated(t, s, "the call note", func(c sandbox.Created) bool { return len(c.Notes) >= n })
}

// expectOwnerLoggedOutUnavailable calls Anna's client through exten after Anna logged out
// since crmlink's last look at the phones: Asterisk cannot reach her phone, and the call
// goes to the fallback as owner_unavailable at once, nothing rung.
func expectOwnerLoggedOutUnavailable(t *testing.T, s *stack, exten string) {
	t.Helper()
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)
	anna := loggedOutSinceLastRefresh(t, s, "101")
	dialled := time.Now()
	dial(t, s.ast, newCaller(t, s.ast, annaClient), exten)
	expectFallback(t, operator, "owner_unavailable", annaUser)
	assert.Less(t, time.Since(dialled), s.cfg.Routing.RingTimeout, "nobody waited for a ring timeout")
	notRung(t, anna)
}

// loggedOutSinceLastRefresh registers a manager phone, waits until crmlink's endpoint
// list has seen it online, and unregisters it: Asterisk knows at once, the list only at
// its next refresh.
func loggedOutSinceLastRefresh(t *testing.T, s *stack, ext string) *siptest.Phone {
	t.Helper()
	p := managerPhone(t, s.ast, ext)
	registered := time.Now()
	testrig.WaitFor(t, 10*time.Second, "a presence refresh after "+ext+" registered", func() bool {
		return s.app.ARI.PresenceAt().After(registered)
	})
	require.NoError(t, unregister(t, s.ast, p, ext), "unREGISTER "+ext)
	return p
}

// A crmlink that stopped after answering a caller for the owner and before bridging them
// left the caller in the application, in silence. The next crmlink's reconciler finds the
// answered caller in no bridge and sends it to the fallback as interrupted.
func TestStrandedCallerReachesTheFallbackAfterARestart(t *testing.T) {
	ast := testrig.Asterisk(t)
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)

	// The crmlink that stops: it takes the call into the application, answers it, and is gone.
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	old := native.New(&native.Options{Application: "crmlink", URL: ast.ARIURL, WebsocketURL: ast.WSURL,
		Username: ast.User, Password: ast.Password})
	require.NoError(t, old.ConnectWithContext(ctx))
	sub := old.Bus().Subscribe(nil, ari.Events.StasisStart)
	call := dial(t, ast, newCaller(t, ast, annaClient), ariExten)
	var caller string
	select {
	case e := <-sub.Events():
		caller = e.(*ari.StasisStart).Channel.ID
	case <-ctx.Done():
		t.Fatal("no StasisStart for the call")
	}
	ast.Post(t, "/channels/"+caller+"/answer")
	res, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode, "the caller was answered")
	sub.Cancel()
	old.Close()

	restarted := time.Now()
	startStack(t)
	in := expectFallback(t, operator, "interrupted", 0)
	t.Logf("the stranded caller reached the fallback %s after crmlink started", time.Since(restarted).Round(time.Millisecond))
	assert.Equal(t, annaClient, in.From(), "the operator sees the caller")
}

// decisions sums crmlink_route_decisions_total in /metrics over the samples whose labels
// include match.
func decisions(t *testing.T, s *stack, match map[string]string) float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.api+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.cfg.HTTP.Token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		sample, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasPrefix(sample, "crmlink_route_decisions_total{") {
			continue
		}
		matched := true
		for k, v := range match {
			matched = matched && strings.Contains(sample, k+`="`+v+`"`)
		}
		if n, err := strconv.ParseFloat(value, 64); err == nil && matched {
			sum += n
		}
	}
	require.NoError(t, sc.Err())
	return sum
}

// expectCounted waits until /metrics counts the call's routing as want (result and
// reason), and checks nothing else was counted.
func expectCounted(t *testing.T, s *stack, result, reason string) {
	t.Helper()
	testrig.WaitFor(t, callWait, "crmlink_route_decisions_total counting the call as "+result+" "+reason, func() bool {
		return decisions(t, s, map[string]string{"result": result, "reason": reason}) == 1
	})
	assert.Equal(t, 1.0, decisions(t, s, nil), "one call, counted once")
}

// A dialplan without crmlink's dial context (one from before asterisk.ari.ringing:
// dialplan): Asterisk refuses the continue to its label, and crmlink rings the owner's
// phone itself; the caller never notices.
func TestARIDialContextMissingRingsTheBridgeWay(t *testing.T) {
	s := startStack(t, func(c *config.Config) {
		c.Asterisk.ARI.Ringing, c.Asterisk.ARI.DialContext = "dialplan", "crmlink-no-such-context"
	})
	anna := managerPhone(t, s.ast, "101")
	caller := newCaller(t, s.ast, annaClient)

	call := dial(t, s.ast, caller, ariExten)

	in := nextIncoming(t, anna, callWait)
	answerAndCheckBridged(t, s, in, call, annaClient, annaUser, "crm")
	expectCounted(t, s, "ROUTED", "")
}
