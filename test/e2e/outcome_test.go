package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/routing"
)

func TestOutcomeIncomingAnsweredByOwner(t *testing.T) {
	s := startStack(t)
	anna := managerPhone(t, s.ast, "101")
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)
	in := nextIncoming(t, anna, callWait)
	answerAndCheckBridged(t, s, in, call, annaClient, annaUser, "crm")
	hangupBoth(t, in, call)

	o := s.nextOutcome(t)
	assert.Equal(t, routing.Incoming, o.Direction)
	assert.Equal(t, annaClient, o.Caller)
	assert.Equal(t, ariExten, o.Called)
	assert.True(t, o.Answered)
	assert.Equal(t, crm.UserID(annaUser), o.AnsweredBy)
	assert.Equal(t, crm.UserID(annaUser), o.FirstOperator)
	assert.Equal(t, routing.Routed, o.Decision.Result)
	assert.NotEmpty(t, o.ID, "the linkedid is the idempotency key")
	assert.Positive(t, o.TalkDuration)
}

// The owner's phone rings out, the call goes to the operator desk, nobody answers there
// either and the client hangs up: a missed call whose first operator is the owner.
func TestOutcomeMissedAfterOwnerAndFallback(t *testing.T) {
	s := startStack(t, func(c *config.Config) { c.Routing.RingTimeout = 1 * time.Second })
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)
	anna := managerPhone(t, s.ast, "101")
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)
	nextIncoming(t, anna, callWait)
	expectFallback(t, operator, "owner_no_answer", annaUser)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, call.Hangup(ctx))

	o := s.nextOutcome(t)
	assert.False(t, o.Answered)
	assert.Equal(t, crm.UserID(annaUser), o.FirstOperator)
	assert.Zero(t, o.AnsweredBy)
	assert.Equal(t, routing.ReasonOwnerNoAnswer, o.Decision.Reason)
	assert.GreaterOrEqual(t, o.RingDuration, time.Second)
}

func TestOutcomeFallbackAnsweredByOperator(t *testing.T) {
	s := startStack(t)
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)
	call := dial(t, s.ast, newCaller(t, s.ast, unknownNum), ariExten)
	answerAndHangup(t, expectFallback(t, operator, "not_found", 0), call)

	o := s.nextOutcome(t)
	assert.True(t, o.Answered, "the operator talked to the client")
	assert.Zero(t, o.AnsweredBy, "the operator desk is not a CRM manager")
	assert.Equal(t, routing.ReasonNotFound, o.Decision.Reason)
}

func TestOutcomeOutgoingCalls(t *testing.T) {
	expectOutgoingOutcomes(t, func(t *testing.T) *stack { return startStack(t) }, outsideNumber)
}

// outsideNumber is the client Anna calls in the outgoing tests.
const outsideNumber = "89161234567"

// expectOutgoingOutcomes has Anna key in dialled (outsideNumber, with a prefix where the
// dialplan wants one) on the stack start gives, once answered and once rejected by the
// client, and checks each call's outgoing outcome.
func expectOutgoingOutcomes(t *testing.T, start func(*testing.T) *stack, dialled string) {
	for _, answered := range []bool{true, false} {
		name := map[bool]string{true: "answered", false: "not reached"}[answered]
		t.Run(name, func(t *testing.T) {
			s := start(t)
			anna := managerPhone(t, s.ast, "101")
			client := newPhone(t, "pstn", s.ast.TrunkHost, 5060)
			ctx, cancel := context.WithTimeout(context.Background(), callWait)
			defer cancel()
			call, err := anna.Call(ctx, "sip:"+dialled+"@127.0.0.1:5060")
			require.NoError(t, err)
			in := nextIncoming(t, client, callWait)
			assert.Equal(t, outsideNumber, in.To(), "the call left through the trunk")
			if answered {
				talk(t, in, call)
			} else {
				require.NoError(t, in.Reject(486))
			}

			o := s.nextOutcome(t)
			assert.Equal(t, routing.Outgoing, o.Direction)
			assert.Equal(t, outsideNumber, o.Called)
			assert.Equal(t, crm.UserID(annaUser), o.Manager)
			assert.Equal(t, answered, o.Answered)
			if answered {
				assert.GreaterOrEqual(t, o.TalkDuration, talkTime)
			}
		})
	}
}
