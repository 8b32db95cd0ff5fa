package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/app"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/pbx/ari"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
	"github.com/crmlink/crmlink/routing"
)

// queueExten is a FastAGI-wired number whose fallback is the sales queue of the rig
// (asterisk-conf/queues.conf: members PJSIP/101 and PJSIP/102, ringall).
const queueExten = "380"

// transferTarget is Boris's extension as a phone in [from-office] dials it.
const transferTarget = "sip:102@127.0.0.1:5060"

// queueCall places a call from Dana's client (Dana has no phone: crmlink sends it to the
// fallback, the queue) and waits until both members ring.
func queueCall(t *testing.T, s *stack, anna, boris *siptest.Phone) (call *siptest.Call, annaRing, borisRing *siptest.IncomingCall) {
	t.Helper()
	call = dial(t, s.ast, newCaller(t, s.ast, danaClient), queueExten)
	return call, nextIncoming(t, anna, callWait), nextIncoming(t, boris, callWait)
}

// callNote waits for the one call note of outcome o and returns it.
func callNote(t *testing.T, s *stack, o routing.CallOutcome) sandbox.Note {
	t.Helper()
	c := waitCreated(t, s, "the call note", func(c sandbox.Created) bool { return len(c.Notes) > 0 })
	require.Len(t, c.Notes, 1, "one note")
	assert.Equal(t, o.ID, c.Notes[0].Params.Uniq)
	return c.Notes[0]
}

// assertCredited checks whom the note credits and that its text names everyone who talked.
func assertCredited(t *testing.T, n sandbox.Note, user crm.UserID, talked ...string) {
	t.Helper()
	assert.Equal(t, strconv.FormatInt(int64(user), 10), n.Params.CallResponsible)
	for _, name := range talked {
		assert.Contains(t, n.Params.CallResult, name, "the note names who talked")
	}
}

// A client falls back into the queue of Anna and Boris; both phones ring, Boris answers:
// the call is Boris's. Anna's phone rang, and ringing is not talking.
func TestObserverQueueSecondMemberAnswers(t *testing.T) {
	s := observingStack(t, withAGI)
	anna, boris := managerPhone(t, s.ast, "101"), managerPhone(t, s.ast, "102")
	call, _, borisRing := queueCall(t, s, anna, boris)
	talk(t, borisRing, call)

	o := s.nextOutcome(t)
	assert.Equal(t, routing.Fallback, o.Decision.Result, "crmlink sent the call to the queue")
	assert.True(t, o.Answered)
	assert.Equal(t, crm.UserID(borisUser), o.AnsweredBy, "the member who answered")
	assert.Equal(t, crm.UserID(annaUser), o.FirstOperator, "the first phone that rang")
	require.Len(t, o.Talkers, 1, "Anna only rang")
	assert.Equal(t, "PJSIP/102", o.Talkers[0].Endpoint)
	assert.GreaterOrEqual(t, o.Talkers[0].Talk, talkTime)
	assertCredited(t, callNote(t, s, o), borisUser, "Boris")
}

// The client gives up while the queue rings: a missed call, one callback task.
func TestObserverQueueAbandonIsOneCallbackTask(t *testing.T) {
	s := observingStack(t, withAGI)
	anna, boris := managerPhone(t, s.ast, "101"), managerPhone(t, s.ast, "102")
	call, _, _ := queueCall(t, s, anna, boris)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, call.Hangup(ctx))

	o := s.nextOutcome(t)
	assert.False(t, o.Answered, "nobody talked")
	assert.Zero(t, o.AnsweredBy)
	assert.Empty(t, o.Talkers)
	c := waitCreated(t, s, "the callback task and the missed-call note", func(c sandbox.Created) bool {
		return len(c.Tasks) > 0 && len(c.Notes) > 0
	})
	require.Len(t, c.Tasks, 1, "one callback task")
	assert.Equal(t, int64(crm.TaskTypeCall), c.Tasks[0].TaskTypeID)
	assert.Equal(t, int64(danaUser), c.Tasks[0].ResponsibleUserID, "the client's manager calls back")
	nextOutcomeIsDirectCall(t, s, anna)
}

// transferred places a client's call to Anna's direct number; Anna answers and passes the
// client to Boris, blind or after talking to him first; the client talks to Boris and
// hangs up. It returns Anna's phone.
func transferred(t *testing.T, s *stack, attended bool) *siptest.Phone {
	t.Helper()
	anna, boris := managerPhone(t, s.ast, "101"), managerPhone(t, s.ast, "102")
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), directExten)
	annaIn := nextIncoming(t, anna, callWait)
	answer(t, annaIn, call)
	time.Sleep(talkTime) // Anna talks to the client
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	if attended {
		consult, err := anna.Call(ctx, transferTarget)
		require.NoError(t, err)
		borisIn := nextIncoming(t, boris, callWait)
		require.NoError(t, borisIn.Answer(ctx))
		_, err = consult.WaitAnswer(ctx)
		require.NoError(t, err)
		// Anna talks to Boris: a REFER with Replaces before Asterisk has bridged them fails.
		testrig.WaitFor(t, callWait, "Anna and Boris talking", func() bool { return s.ast.TwoPartyBridges() == 2 })
		target, err := consult.Replaces(transferTarget)
		require.NoError(t, err)
		require.NoError(t, annaIn.Refer(ctx, target))
		// Like a desk phone once the transfer went through: hang up both lines (Asterisk
		// may have ended them already).
		require.NoError(t, annaIn.WaitTransferred(ctx))
		require.NoError(t, consult.Hangup(ctx))
		require.NoError(t, annaIn.Hangup(ctx))
	} else {
		require.NoError(t, annaIn.Refer(ctx, transferTarget))
		require.NoError(t, nextIncoming(t, boris, callWait).Answer(ctx))
		require.NoError(t, annaIn.WaitTransferred(ctx))
		require.NoError(t, annaIn.Hangup(ctx))
	}
	time.Sleep(talkTime) // Boris talks to the client
	require.NoError(t, call.Hangup(ctx))
	return anna
}

// A blind transfer (REFER) and an attended one (REFER with Replaces) from Anna to Boris:
// one outcome for the client's call, both of them on it in order, credited per
// asterisk.observer.credit; the consultation call is internal and records nothing.
func TestObserverTransfers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		attended bool
		credit   ari.Credit
		credited crm.UserID
	}{
		{"blind, last answered", false, ari.CreditLastAnswered, borisUser},
		{"attended, last answered", true, ari.CreditLastAnswered, borisUser},
		{"attended, first answered", true, ari.CreditFirstAnswered, annaUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := observingStack(t, func(c *config.Config) { c.Asterisk.Observer.Credit = string(tc.credit) })
			anna := transferred(t, s, tc.attended)

			o := s.nextOutcome(t)
			assert.Equal(t, annaClient, o.Caller)
			assert.True(t, o.Answered)
			assert.Equal(t, tc.credited, o.AnsweredBy)
			require.Len(t, o.Talkers, 2, "the transfer chain")
			for i, want := range []struct {
				endpoint string
				user     crm.UserID
			}{{"PJSIP/101", annaUser}, {"PJSIP/102", borisUser}} {
				assert.Equal(t, want.endpoint, o.Talkers[i].Endpoint)
				assert.Equal(t, want.user, o.Talkers[i].User)
				assert.Positive(t, o.Talkers[i].Talk)
			}
			assert.GreaterOrEqual(t, o.Talkers[0].Talk, talkTime, "Anna talked before the transfer")
			assertCredited(t, callNote(t, s, o), tc.credited, "Anna", "Boris")
			nextOutcomeIsDirectCall(t, s, anna)
		})
	}
}

// A client whose number is withheld talks to Anna: nothing reaches the CRM, nothing waits
// as a dead letter, the metric counts the call.
func TestObserverWithheldNumberWritesNothing(t *testing.T) {
	s := observingStack(t)
	anna := managerPhone(t, s.ast, "101")
	call := dial(t, s.ast, newCaller(t, s.ast, "anonymous"), directExten)
	talk(t, nextIncoming(t, anna, callWait), call)

	testrig.WaitFor(t, callWait, "the withheld call counted", func() bool { return s.app.Observer.Skipped(ari.SkipWithheld) == 1 })
	assert.Contains(t, s.metrics(t), `crmlink_observer_calls_not_recorded_total{reason="withheld"} 1`)
	nextOutcomeIsDirectCall(t, s, anna) // and no outcome before it
	assert.Empty(t, s.deadLetters(t), "no dead letter")
	c := waitCreated(t, s, "the direct call's note", func(c sandbox.Created) bool { return len(c.Notes) > 0 })
	assert.Len(t, c.Notes, 1, "only the direct call's note")
}

// crmlink restarts while Boris talks to a client who came through the queue: the call is
// recorded once, when it ends, credited to Boris.
func TestObserverRestartMidQueueCallRecordsOnce(t *testing.T) {
	s := observingStack(t, withAGI)
	anna, boris := managerPhone(t, s.ast, "101"), managerPhone(t, s.ast, "102")
	call, _, borisRing := queueCall(t, s, anna, boris)
	answer(t, borisRing, call)

	s.restart(t)
	testrig.WaitFor(t, 10*time.Second, "the new observer connected", s.app.Observer.Connected)
	time.Sleep(talkTime)
	hangupBoth(t, borisRing, call)

	o := s.nextOutcome(t)
	assert.Equal(t, danaClient, o.Caller)
	assert.Equal(t, crm.UserID(borisUser), o.AnsweredBy)
	assertCredited(t, callNote(t, s, o), borisUser, "Boris")
	nextOutcomeIsDirectCall(t, s, anna)
	c := waitCreated(t, s, "the direct call's note", func(c sandbox.Created) bool { return len(c.Notes) > 1 })
	assert.Len(t, c.Notes, 2, "the queue call's note once, and the direct call's")
}

// metrics is crmlink's /metrics text.
func (s *stack) metrics(t *testing.T) string {
	t.Helper()
	res, err := s.apiGet("/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return string(b)
}

// deadLetters lists the event queue's dead letters.
func (s *stack) deadLetters(t *testing.T) []json.RawMessage {
	t.Helper()
	res, err := s.apiGet("/v1/queue/dead")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var out []json.RawMessage
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	return out
}

// secondInstance starts another crmlink on the same Asterisk, Redis database and amoCRM,
// observing under an application name of its own (the first keeps the Stasis application).
func (s *stack) secondInstance(t *testing.T) *stack {
	t.Helper()
	cfg := *s.cfg
	cfg.Asterisk.ARI.Enabled, cfg.AGI.Enabled, cfg.SIP.Enabled = false, false, false
	cfg.Asterisk.Observer.Application = "crmlink-observer-2"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.HTTP.Listen = l.Addr().String()
	require.Empty(t, cfg.Validate())
	a, err := app.New(&cfg, testLogger(t))
	require.NoError(t, err)
	two := &stack{ast: s.ast, crm: s.crm, app: a, cfg: &cfg, api: "http://" + l.Addr().String(), outcomes: make(chan routing.CallOutcome, 16)}
	a.CallOutcomes = func(o routing.CallOutcome) { two.outcomes <- o }
	two.stop = testrig.Run(t, "second crmlink", func(ctx context.Context) error { return a.Serve(ctx, l) }, a.Close)
	testrig.WaitFor(t, 10*time.Second, "the second observer connected", a.Observer.Connected)
	return two
}

// Two crmlink instances observe one Asterisk: both see the call end, the CRM gets it once.
func TestObserverTwoInstancesRecordACallOnce(t *testing.T) {
	s := observingStack(t)
	two := s.secondInstance(t)
	anna := managerPhone(t, s.ast, "101")
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), directExten)
	talk(t, nextIncoming(t, anna, callWait), call)

	o1, o2 := s.nextOutcome(t), two.nextOutcome(t)
	assert.Equal(t, o1.ID, o2.ID, "the same call, seen by both")
	n := callNote(t, s, o1)
	assert.Equal(t, strconv.Itoa(annaUser), n.Params.CallResponsible)
	nextOutcomeIsDirectCall(t, s, anna) // the first instance's next outcome
	c := waitCreated(t, s, "the direct call's note", func(c sandbox.Created) bool { return len(c.Notes) > 1 })
	assert.Len(t, c.Notes, 2, "the talked call's note once, and the direct call's")
}

// With the ARI wiring the controller sends the call to the queue and follows it there: the
// member who answered is credited, and the observer adds no second outcome.
func TestARIFallbackIntoTheQueueCreditsTheMember(t *testing.T) {
	s := observingStack(t)
	anna, boris := managerPhone(t, s.ast, "101"), managerPhone(t, s.ast, "102")
	call := dial(t, s.ast, newCaller(t, s.ast, danaClient), "280")
	nextIncoming(t, anna, callWait)
	talk(t, nextIncoming(t, boris, callWait), call)

	o := s.nextOutcome(t)
	assert.Equal(t, routing.Fallback, o.Decision.Result)
	assert.Positive(t, o.Decision.Latency, "the controller's outcome")
	assert.True(t, o.Answered)
	assert.Equal(t, crm.UserID(borisUser), o.AnsweredBy)
	nextOutcomeIsDirectCall(t, s, anna)
}
