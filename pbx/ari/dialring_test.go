package ari

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
)

// With ringing "dialplan" a routed call costs three REST requests: follow the channel, one
// variable write with the decision and the dial string, continue to the dial context.
// What the dialplan then reports settles the call's routing.
func TestRingInDialplan(t *testing.T) {
	dial := func(status string) *ari.Dial {
		return &ari.Dial{Caller: ari.ChannelData{ID: "caller-1"}, Peer: ari.ChannelData{ID: "peer-1", Name: "PJSIP/101-00000001"}, Dialstatus: status}
	}
	userEvent := func(reason string) *ari.ChannelUserevent {
		return &ari.ChannelUserevent{Channel: ari.ChannelData{ID: "caller-1"}, Eventname: fallbackUserEvent, Userevent: map[string]any{"reason": reason}}
	}
	operator := &ari.Dial{Caller: ari.ChannelData{ID: "caller-1"}, Peer: ari.ChannelData{ID: "peer-2", Name: "PJSIP/100-00000002"}}
	cases := []struct {
		name         string
		events       []ari.Event
		result       routing.Result
		reason       routing.Reason
		answeredBy   crm.UserID
		ownerOffline bool
	}{
		{"the owner answers", []ari.Event{dial(""), dial("ANSWER")}, routing.Routed, "", 1001, false},
		{"the caller gives up while it rings", []ari.Event{dial(""), dial("CANCEL")}, routing.Routed, "", 0, false},
		{"nobody answers", []ari.Event{dial(""), dial("NOANSWER"), userEvent("owner_no_answer"), operator}, routing.Fallback, routing.ReasonOwnerNoAnswer, 0, false},
		{"no phone reachable", []ari.Event{userEvent("owner_unavailable"), operator}, routing.Fallback, routing.ReasonOwnerUnavailable, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeARI(t)
			outcomes := make(chan routing.CallOutcome, 1)
			c := newTestController(t, f, outcomes)
			c.opts.Ringing, c.opts.DialContext = RingDialplan, DefaultDialContext
			c.opts.Managers = map[string]crm.UserID{"PJSIP/101": 1001}
			c.opts.Decider = routing.DeciderFunc(func(context.Context, routing.Call) routing.Decision { return routedDecision })
			var mu sync.Mutex
			var settled []routing.Decision
			c.opts.OnDecision = func(_ routing.Call, d routing.Decision) {
				mu.Lock()
				defer mu.Unlock()
				settled = append(settled, d)
			}
			c.presence.store(map[string]string{"PJSIP/101": "online"}, time.Now())

			k := testCall(c)
			go func() { defer k.forget(); k.run(context.Background(), false) }()
			f.await("POST /channels/caller-1/continue")
			assert.Equal(t, []string{
				"POST /applications/crmlink/subscription?eventSource=channel:caller-1",
				"POST /channels/caller-1/variable?value=ROUTED,,1001,crm,crmlink:ROUTED,PJSIP/101,5&variable=ARRAY(CRMLINK_RESULT,CRMLINK_REASON,CRMLINK_OWNER,CRMLINK_SOURCE,CDR(userfield),CRMLINK_DIAL,CRMLINK_RING_TIMEOUT)",
				"POST /channels/caller-1/continue?context=crmlink-dial&extension=200&label=dial",
			}, f.requests())
			for _, e := range tc.events {
				k.deliver(e)
			}
			k.deliver(&ari.ChannelDestroyed{Channel: ari.ChannelData{ID: "caller-1"}})
			var out routing.CallOutcome
			select {
			case out = <-outcomes:
			case <-time.After(5 * time.Second):
				t.Fatal("no outcome")
			}
			mu.Lock()
			require.Len(t, settled, 1, "the routing is reported once")
			assert.Equal(t, tc.result, settled[0].Result)
			assert.Equal(t, tc.reason, settled[0].Reason)
			mu.Unlock()
			assert.Equal(t, tc.result, out.Decision.Result)
			assert.Equal(t, tc.reason, out.Decision.Reason)
			assert.Equal(t, crm.UserID(1001), out.FirstOperator)
			assert.Equal(t, tc.answeredBy, out.AnsweredBy)
			assert.Equal(t, tc.answeredBy != 0, out.Answered)
			assert.Equal(t, !tc.ownerOffline, c.presence.online("PJSIP/101", time.Now(), time.Minute), "presence")
			assert.Len(t, f.requests(), 3, "nothing more is asked of Asterisk")
		})
	}
}

// A dialplan from before ringing "dialplan" has no labelled dial context: Asterisk refuses
// the continue, and the call, still in the application, rings the bridge way, as every call
// after it (no second attempt at the dial context).
func TestRingInDialplanWithoutTheContextRingsTheBridgeWay(t *testing.T) {
	f := newFakeARI(t)
	f.set("POST /channels/caller-1/continue", http.StatusNotFound, `{"message":"Requested label can not be found"}`)
	outcomes := make(chan routing.CallOutcome, 2)
	c := newTestController(t, f, outcomes)
	c.opts.Ringing = RingDialplan
	c.opts.Decider = routing.DeciderFunc(func(context.Context, routing.Call) routing.Decision { return routedDecision })
	c.presence.store(map[string]string{"PJSIP/101": "online"}, time.Now())

	k := testCall(c)
	go func() { defer k.forget(); k.run(context.Background(), false) }()
	originate := f.await("POST /channels?")
	assert.True(t, c.noDialContext.Load())
	assert.Contains(t, originate, "endpoint=PJSIP/101", "the owner's phone is rung by crmlink")
	// The owner's leg answers and is bridged with the caller.
	leg := queryValue(originate, "channelId")
	k.deliver(&ari.StasisStart{Args: []string{legArg}, Channel: ari.ChannelData{ID: leg}})
	f.await("POST /bridges/crmlink-br-")
	f.await("POST /bridges/crmlink-br-") // addChannel
	k.deliver(&ari.StasisEnd{Channel: ari.ChannelData{ID: "caller-1"}})
	select {
	case out := <-outcomes:
		assert.True(t, out.Answered)
		assert.Equal(t, routing.Routed, out.Decision.Result)
	case <-time.After(5 * time.Second):
		t.Fatal("no outcome")
	}

	// The next call does not try the dial context again.
	k2 := newCall(c, ari.ChannelData{ID: "caller-2", Caller: &ari.CallerID{Number: "79161234568"},
		Dialplan: &ari.DialplanCEP{Context: "from-trunk", Exten: "200", Priority: 2}}, zerolog.Nop())
	c.calls.Store(k2.ch.ID, k2)
	go func() { defer k2.forget(); k2.run(context.Background(), false) }()
	f.await("POST /channels?")
	assert.NotContains(t, f.requests(), "POST /channels/caller-2/continue?context=crmlink-dial&extension=200&label=dial")
	k2.deliver(&ari.StasisEnd{Channel: ari.ChannelData{ID: "caller-2"}})
	<-outcomes
}

// Over the websocket a routed call's three requests leave together: Asterisk takes them in
// order, so none waits for the answer to the one before (one round trip, not three).
func TestRingInDialplanPipelinesOverTheWebsocket(t *testing.T) {
	f := newFakeARI(t)
	hold := make(chan struct{})
	f.mu.Lock()
	f.socketHold = hold
	f.mu.Unlock()
	c := newTestController(t, f, make(chan routing.CallOutcome, 1))
	c.opts.Ringing = RingDialplan
	c.opts.Decider = routing.DeciderFunc(func(context.Context, routing.Call) routing.Decision { return routedDecision })
	c.presence.store(map[string]string{"PJSIP/101": "online"}, time.Now())
	s := useFakeSocket(t, f, c.rest)

	k := testCall(c)
	go func() { defer k.forget(); k.run(context.Background(), false) }()
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.pending) == 3
	}, 5*time.Second, 5*time.Millisecond, "the three requests are out before any answer")
	close(hold)
	f.await("POST /channels/caller-1/continue")
	assert.Equal(t, []string{
		"POST /applications/crmlink/subscription?eventSource=channel:caller-1",
		"POST /channels/caller-1/variable?value=ROUTED,,1001,crm,crmlink:ROUTED,PJSIP/101,5&variable=ARRAY(CRMLINK_RESULT,CRMLINK_REASON,CRMLINK_OWNER,CRMLINK_SOURCE,CDR(userfield),CRMLINK_DIAL,CRMLINK_RING_TIMEOUT)",
		"POST /channels/caller-1/continue?context=crmlink-dial&extension=200&label=dial",
	}, f.requests(), "in this order")
	k.deliver(&ari.ChannelDestroyed{Channel: ari.ChannelData{ID: "caller-1"}})
}
