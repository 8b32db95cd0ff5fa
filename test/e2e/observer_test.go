package e2e

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
	"github.com/crmlink/crmlink/routing"
)

// directExten is Anna's direct number in [from-trunk]: a plain Dial(PJSIP/101) that never
// touches crmlink (asterisk-conf/extensions.conf, _7XX).
const directExten = "701"

// withObserver turns the call observer on; the operator desk is an office phone.
func withObserver(c *config.Config) {
	c.Asterisk.Observer.Enabled = true
	c.Asterisk.Observer.OfficeEndpoints = []string{"PJSIP/100"}
}

// observingStack is the stack with the call observer on, once it follows Asterisk's calls.
func observingStack(t *testing.T, tweak ...func(*config.Config)) *stack {
	t.Helper()
	s := startStack(t, append([]func(*config.Config){withObserver}, tweak...)...)
	testrig.WaitFor(t, 10*time.Second, "the call observer connected", s.app.Observer.Connected)
	return s
}

// talkTime is how long talk keeps a call up.
const talkTime = 200 * time.Millisecond

// talk answers an incoming call and hangs up from the answering side after talkTime.
func talk(t *testing.T, in *siptest.IncomingCall, call *siptest.Call) {
	t.Helper()
	answer(t, in, call)
	time.Sleep(talkTime) // a talk time the outcome must show
	hangupBoth(t, in, call)
}

// answer answers an incoming call and waits until the caller sees the answer.
func answer(t *testing.T, in *siptest.IncomingCall, call *siptest.Call) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, in.Answer(ctx))
	_, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
}

// incomingAnsweredBy asserts the next outcome is an incoming call from caller to called
// that the manager talked on.
func incomingAnsweredBy(t *testing.T, s *stack, caller, called string, user crm.UserID) routing.CallOutcome {
	t.Helper()
	o := s.nextOutcome(t)
	assert.Equal(t, routing.Incoming, o.Direction)
	assert.Equal(t, caller, o.Caller)
	assert.Equal(t, called, o.Called)
	assert.True(t, o.Answered)
	assert.Equal(t, user, o.AnsweredBy)
	assert.Equal(t, user, o.FirstOperator)
	assert.NotEmpty(t, o.ID, "the linkedid is the idempotency key")
	assert.GreaterOrEqual(t, o.TalkDuration, talkTime)
	return o
}

// expectCallNote waits for the call note of outcome o and checks whom it credits.
func expectCallNote(t *testing.T, s *stack, o routing.CallOutcome, noteType string, user crm.UserID) {
	t.Helper()
	c := waitCreated(t, s, "the call note", func(c sandbox.Created) bool { return len(c.Notes) > 0 })
	require.Len(t, c.Notes, 1, "one note")
	n := c.Notes[0]
	assert.Equal(t, noteType, n.NoteType)
	assert.Equal(t, o.ID, n.Params.Uniq)
	assert.Equal(t, strconv.FormatInt(int64(user), 10), n.Params.CallResponsible, "credited to the manager who talked")
}

// nextOutcomeIsDirectCall places an unanswered call to Anna's direct number and checks
// that it is the next outcome: an outcome of anything before it (a second one for a call
// already reported, an internal call) would come first.
func nextOutcomeIsDirectCall(t *testing.T, s *stack, anna *siptest.Phone) {
	t.Helper()
	number := newCaller(t, s.ast, "")
	call := dial(t, s.ast, number, directExten)
	nextIncoming(t, anna, callWait)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, call.Hangup(ctx))
	o := s.nextOutcome(t)
	assert.Equal(t, number.User(), o.Caller, "the direct call's outcome, nothing before it")
	assert.Equal(t, directExten, o.Called)
	assert.False(t, o.Answered, "the caller gave up while Anna's phone rang")
	assert.Equal(t, crm.UserID(annaUser), o.FirstOperator)
}

// A client dials Anna's direct number: crmlink routes nothing, and the call is still
// recorded, credited to Anna, with a few events per call (the observer's event filter).
func TestObserverDirectCallToManager(t *testing.T) {
	s := observingStack(t)
	anna := managerPhone(t, s.ast, "101")
	before := s.app.Observer.Events()
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), directExten)
	talk(t, nextIncoming(t, anna, callWait), call)

	o := incomingAnsweredBy(t, s, annaClient, directExten, annaUser)
	assert.Zero(t, o.Decision.Result, "crmlink did not route this call")
	expectCallNote(t, s, o, sandbox.NoteCallIn, annaUser)
	// ChannelCreated, ChannelConnectedLine and ChannelDestroyed of both channels and three
	// Dial events; without the filter Asterisk sends over 80 (ChannelVarset, bridges...).
	assert.LessOrEqual(t, s.app.Observer.Events()-before, int64(10), "events the observer read for one call")
}

// Calls FastAGI or the SIP redirect routed to the owner: the dialplan rang Anna, and the
// call is recorded, credited to her, with the decision FastAGI left on the channel.
func TestObserverRecordsRoutedCalls(t *testing.T) {
	for _, tc := range []struct {
		name, exten string
		wiring      func(*config.Config)
		// decided: the decision reaches the dialplan as channel variables (a 302 carries
		// only the manager's number).
		decided bool
	}{
		{"FastAGI", agiExten, withAGI, true},
		{"SIP redirect", redirectExten, withRedirect, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := observingStack(t, tc.wiring)
			anna := managerPhone(t, s.ast, "101")
			call := dial(t, s.ast, newCaller(t, s.ast, annaClient), tc.exten)
			talk(t, nextIncoming(t, anna, callWait), call)

			o := incomingAnsweredBy(t, s, annaClient, tc.exten, annaUser)
			if tc.decided {
				assert.Equal(t, routing.Routed, o.Decision.Result, "the decision FastAGI gave the dialplan")
				assert.Equal(t, crm.UserID(annaUser), o.Decision.Owner)
				assert.Equal(t, routing.Source("crm"), o.Decision.Source)
			}
			expectCallNote(t, s, o, sandbox.NoteCallIn, annaUser)
		})
	}
}

// A FastAGI call crmlink sends to the operator desk keeps the reason on its outcome.
func TestObserverFastAGIFallbackKeepsTheReason(t *testing.T) {
	s := observingStack(t, withAGI)
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)
	call := dial(t, s.ast, newCaller(t, s.ast, unknownNum), agiExten)
	answerAndHangup(t, expectFallback(t, operator, "not_found", 0), call)

	o := s.nextOutcome(t)
	assert.True(t, o.Answered, "the operator talked to the client")
	assert.Zero(t, o.AnsweredBy, "the operator desk is not a CRM manager")
	assert.Equal(t, routing.Fallback, o.Decision.Result)
	assert.Equal(t, routing.ReasonNotFound, o.Decision.Reason)
}

// Calls through Stasis(crmlink) are reported by the controller, with its decision; the
// observer adds no second outcome, whether the owner took the call, the fallback did, or
// an office phone called out through Stasis(crmlink,outgoing).
func TestObserverLeavesStasisCallsToTheController(t *testing.T) {
	s := observingStack(t)
	anna := managerPhone(t, s.ast, "101")
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)

	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)
	in := nextIncoming(t, anna, callWait)
	answerAndCheckBridged(t, s, in, call, annaClient, annaUser, "crm")
	hangupBoth(t, in, call)
	o := s.nextOutcome(t)
	assert.Equal(t, ariExten, o.Called)
	assert.Equal(t, routing.Routed, o.Decision.Result)
	assert.Positive(t, o.Decision.Latency, "the controller's outcome: it timed the lookup")

	call = dial(t, s.ast, newCaller(t, s.ast, unknownNum), ariExten)
	answerAndHangup(t, expectFallback(t, operator, "not_found", 0), call)
	o = s.nextOutcome(t)
	assert.Equal(t, routing.ReasonNotFound, o.Decision.Reason)

	// Stasis(crmlink,outgoing): Anna calls a client, who does not pick up.
	client := newPhone(t, "pstn", s.ast.TrunkHost, 5060)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	_, err := anna.Call(ctx, "sip:"+outsideNumber+"@127.0.0.1:5060")
	require.NoError(t, err)
	require.NoError(t, nextIncoming(t, client, callWait).Reject(486))
	o = s.nextOutcome(t)
	assert.Equal(t, routing.Outgoing, o.Direction)
	assert.False(t, o.Answered)

	nextOutcomeIsDirectCall(t, s, anna)
}

// Anna calls Boris: both ends are office phones, nothing is recorded.
func TestObserverInternalCallRecordsNothing(t *testing.T) {
	s := observingStack(t)
	anna := managerPhone(t, s.ast, "101")
	boris := managerPhone(t, s.ast, "102")
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	call, err := anna.Call(ctx, "sip:102@127.0.0.1:5060")
	require.NoError(t, err)
	talk(t, nextIncoming(t, boris, callWait), call)

	nextOutcomeIsDirectCall(t, s, anna)
}

// Anna dials out through the plain dialplan (9 + number, no Stasis): an outgoing call.
func TestObserverOutgoingCallThroughThePlainDialplan(t *testing.T) {
	expectOutgoingOutcomes(t, func(t *testing.T) *stack { return observingStack(t) }, "9"+outsideNumber)
}
