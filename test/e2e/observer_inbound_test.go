package e2e

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/routing"
)

// observerInboundApp is the call observer's application on the websocket the rig's
// Asterisk opens for it (ari.conf [crmlink-observer-outbound], websocket_client.conf
// [crmlink-observer-outbound], to the same listener as the controller's).
const observerInboundApp = "crmlink-observer-inbound"

// entityID is how Asterisk names itself in ARI events (asterisk_id).
var entityID = regexp.MustCompile(`^([0-9a-f]{2}:){5}[0-9a-f]{2}$`)

// withObserverInbound runs crmlink with no ARI connection of its own: Asterisk connects
// both the Stasis application and the call observer's to it.
func withObserverInbound(c *config.Config) {
	withInbound(c)
	withObserver(c)
	c.Asterisk.Observer.Application = observerInboundApp
	c.Asterisk.Observer.Inbound = true
}

// Calls that never enter Stasis (FastAGI, a plain Dial() to a manager's number) are
// observed over the connection Asterisk opened: each has one outcome naming the Asterisk
// and one call note. A call through the inbound Stasis controller on the same Asterisk
// is the controller's alone.
func TestObserverInboundRecordsCallsOnceEach(t *testing.T) {
	s := startStack(t, withObserverInbound, withAGI)
	observerConnected(t, s)
	assert.Contains(t, s.metrics(t), "crmlink_observer_connections 1")
	anna := managerPhone(t, s.ast, "101")

	var ids []string
	for _, exten := range []string{agiExten, directExten, agiExten} {
		call := dial(t, s.ast, newCaller(t, s.ast, annaClient), exten)
		talk(t, nextIncoming(t, anna, callWait), call)
		o := incomingAnsweredBy(t, s, annaClient, exten, annaUser)
		assert.Regexp(t, entityID, o.Asterisk, "the outcome names the Asterisk (its entity id)")
		if exten == agiExten {
			assert.Equal(t, routing.Routed, o.Decision.Result, "the decision FastAGI left on the channel")
		}
		ids = append(ids, o.ID)
	}
	// Stasis(crmlink-inbound): the controller's outcome only.
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), inboundExten)
	in := nextIncoming(t, anna, callWait)
	answerAndCheckBridged(t, s, in, call, annaClient, annaUser, "cache") // the calls above looked Anna up
	hangupBoth(t, in, call)
	o := s.nextOutcome(t)
	assert.Equal(t, inboundExten, o.Called)
	assert.Positive(t, o.Decision.Latency, "the controller's outcome: it timed the lookup")
	ids = append(ids, o.ID)
	select {
	case extra := <-s.outcomes:
		t.Fatalf("a second outcome: %+v", extra)
	case <-time.After(time.Second):
	}

	c := waitCreated(t, s, "a call note per call", func(c sandbox.Created) bool { return len(c.Notes) >= len(ids) })
	time.Sleep(time.Second) // a second note for a call would come now
	c = s.crm.Created()
	notes := map[string]int{}
	for _, n := range c.Notes {
		assert.Equal(t, sandbox.NoteCallIn, n.NoteType)
		notes[n.Params.Uniq]++
	}
	for _, id := range ids {
		assert.Equal(t, 1, notes[id], "call %s: one call note", id)
	}
	assert.Len(t, notes, len(ids), "no note of another call")
}

// observerConnected waits for the rig's Asterisk to connect the observer's application.
func observerConnected(t *testing.T, s *stack) {
	t.Helper()
	testrig.WaitFor(t, 10*time.Second, "the call observer connected by Asterisk (ari.conf [crmlink-observer-outbound]; "+
		"a rig started from an older asterisk-conf/ lacks it: docker/rig.sh restart-asterisk)", s.app.Observer.Connected)
}

// routeAnswer is GET /v1/route's result and reason for Anna's client.
func routeAnswer(t *testing.T, s *stack) string {
	t.Helper()
	resp, err := s.apiGet("/v1/route?number=" + annaClient)
	require.NoError(t, err)
	defer resp.Body.Close()
	var d struct {
		Result string `json:"result"`
		Reason string `json:"reason"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
	return d.Result + " " + d.Reason
}

// With Asterisk connecting out and no ARI connection of crmlink's own, routing still knows
// whether the owner's phone is registered, from the Asterisk's connection: Anna logged out
// is owner_unavailable at once over FastAGI (her phone is not rung), and routed again once
// she is back.
func TestInboundPresenceDecidesRouting(t *testing.T) {
	s := startStack(t, withObserverInbound, withAGI)
	observerConnected(t, s)
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)
	anna := managerPhone(t, s.ast, "101")
	testrig.WaitFor(t, 10*time.Second, "routed to Anna while she is registered", func() bool { return routeAnswer(t, s) == "ROUTED " })

	require.NoError(t, unregister(t, s.ast, anna, "101"))
	testrig.WaitFor(t, 10*time.Second, "owner_unavailable once she logged out", func() bool { return routeAnswer(t, s) == "FALLBACK owner_unavailable" })
	dialled := time.Now()
	dial(t, s.ast, newCaller(t, s.ast, annaClient), agiExten)
	in := expectFallback(t, operator, "owner_unavailable", annaUser)
	assert.Less(t, time.Since(dialled), s.cfg.Routing.RingTimeout, "nobody waited for a ring timeout")
	notRung(t, anna)
	_ = in.Reject(486)

	require.NoError(t, register(t, s.ast, anna, "101", "300"))
	testrig.WaitFor(t, 10*time.Second, "routed to Anna again", func() bool { return routeAnswer(t, s) == "ROUTED " })
}
