package e2e

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
)

func withCallCard(c *config.Config) { c.AmoCRM.CallCard.Enabled = true }

// waitCallEvents waits until the sandbox has n incoming-call cards and returns them.
func waitCallEvents(t *testing.T, s *stack, n int) []sandbox.CallEvent {
	t.Helper()
	var es []sandbox.CallEvent
	testrig.WaitFor(t, 5*time.Second, strconv.Itoa(n)+" call events", func() bool {
		es = s.crm.CallEvents()
		return len(es) >= n
	})
	return es
}

// A routed call rings Anna's phone: amoCRM gets one call event for Anna, within 1 s of
// the phone's INVITE (p95 over 20 calls). The calls come two a second: each costs the
// account about three requests (card, note, the open-task check), and 7 a second is all
// an amoCRM account has.
func TestCallCardRoutedCall(t *testing.T) {
	s := startStack(t, withCallCard)
	anna := managerPhone(t, s.ast, "101")
	const calls = 20
	lags := make([]time.Duration, 0, calls)
	pace := time.NewTicker(500 * time.Millisecond)
	defer pace.Stop()
	for i := range calls {
		<-pace.C
		call := dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)
		nextIncoming(t, anna, callWait)
		invited := time.Now()
		es := waitCallEvents(t, s, i+1)
		e := es[i]
		assert.Equal(t, []int64{annaUser}, e.Users, "call %d: the card is Anna's", i)
		assert.Equal(t, "+74951000001", e.PhoneNumber)
		assert.Equal(t, int64(2001), e.ElementID, "amoCRM shows the caller's contact")
		lags = append(lags, max(e.At.Sub(invited), 0))
		ctx, cancel := context.WithTimeout(context.Background(), callWait)
		require.NoError(t, call.Hangup(ctx))
		cancel()
		s.nextOutcome(t)
	}
	assert.Len(t, s.crm.CallEvents(), calls, "one card per call, not one per phone or per retry")
	slices.Sort(lags)
	p95 := lags[len(lags)*95/100-1]
	t.Logf("call card after the INVITE: median %v, p95 %v, max %v", lags[len(lags)/2], p95, lags[len(lags)-1])
	assert.LessOrEqual(t, p95, time.Second, "p95 of the card's lag behind the INVITE")
	assert.Equal(t, calls, s.crm.Requests("POST /api/v2/events"))
}

// A caller nobody owns goes to the fallback: the operator desk rings, and its user (the
// desk is mapped to Dana) gets the card, from the call observer.
func TestCallCardFallbackDesk(t *testing.T) {
	s := observingStack(t, withCallCard, func(c *config.Config) {
		c.Managers = append(c.Managers, config.Manager{CRMUser: danaUser, Name: "Desk", Endpoints: []string{"PJSIP/100"}})
		c.Asterisk.Observer.OfficeEndpoints = nil
	})
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)
	call := dial(t, s.ast, newCaller(t, s.ast, unknownNum), ariExten)
	nextIncoming(t, operator, callWait)
	invited := time.Now()
	es := waitCallEvents(t, s, 1)
	assert.Equal(t, []int64{danaUser}, es[0].Users, "the desk's user")
	assert.Equal(t, "+74959999999", es[0].PhoneNumber)
	assert.Zero(t, es[0].ElementID, "an unknown number: amoCRM offers to create a contact")
	assert.Less(t, es[0].At.Sub(invited), time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, call.Hangup(ctx))
	s.nextOutcome(t)
	assert.Len(t, s.crm.CallEvents(), 1, "one card")
}

// With the call observer on as well, a routed call whose owner the dialplan rings
// (asterisk.ari.ringing: dialplan) still gets one card: the controller's, not a second one
// from the observer's view of the same Dial().
func TestCallCardOncePerCallWithTheObserver(t *testing.T) {
	s := observingStack(t, withCallCard)
	anna := managerPhone(t, s.ast, "101")
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)
	nextIncoming(t, anna, callWait)
	es := waitCallEvents(t, s, 1)
	assert.Equal(t, []int64{annaUser}, es[0].Users)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, call.Hangup(ctx))
	s.nextOutcome(t)
	assert.Len(t, s.crm.CallEvents(), 1, "one card per call, not one from the controller and one from the observer")
}

// Calls are credited to the manager: an answered call's note to who talked, a missed
// call's note and call-back task to the manager whose phone rang first, and amoCRM's call
// report counts them per manager.
func TestCallCredit(t *testing.T) {
	s := startStack(t, withScenarios)
	anna := managerPhone(t, s.ast, "101")
	boris := managerPhone(t, s.ast, "102")
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)

	// Anna talks to her client.
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)
	talk(t, nextIncoming(t, anna, callWait), call)
	answered := s.nextOutcome(t)
	c := waitCreated(t, s, "the answered call's note", func(c sandbox.Created) bool { return len(c.Notes) == 1 })
	n := c.Notes[0]
	assert.Equal(t, answered.ID, n.Params.Uniq)
	assert.Equal(t, int64(annaUser), n.CreatedBy, "created_by: who talked")
	assert.Equal(t, int64(annaUser), n.ResponsibleUserID, "responsible_user_id: who talked")

	// Boris's client: Boris's phone rings out, the desk rings, the client gives up.
	call = dial(t, s.ast, newCaller(t, s.ast, borisClient), ariExten)
	nextIncoming(t, boris, callWait)
	nextIncoming(t, operator, callWait)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, call.Hangup(ctx))
	missed := s.nextOutcome(t)
	require.False(t, missed.Answered)
	c = waitCreated(t, s, "the missed call's task and note", func(c sandbox.Created) bool { return len(c.Notes) == 2 && len(c.Tasks) == 1 })
	n = c.Notes[1]
	assert.Equal(t, missed.ID, n.Params.Uniq)
	assert.Equal(t, int64(borisUser), n.CreatedBy, "the missed call's note: the first ringing manager")
	assert.Equal(t, int64(borisUser), n.ResponsibleUserID)
	assert.Equal(t, int64(borisUser), c.Tasks[0].CreatedBy, "the call-back task: the first ringing manager")
	assert.Equal(t, map[int64]int{annaUser: 1, borisUser: 1}, c.CallsByManager(), "amoCRM's call report, per manager")
}
