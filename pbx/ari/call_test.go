package ari

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/routing"
)

func testCall(c *Controller) *call {
	k := newCall(c, ari.ChannelData{
		ID:       "caller-1",
		Caller:   &ari.CallerID{Number: "79161234567"},
		Dialplan: &ari.DialplanCEP{Context: "from-trunk", Exten: "200", Priority: 2},
	}, zerolog.Nop())
	c.calls.Store(k.ch.ID, k)
	return k
}

// queryValue reads one parameter out of a recorded request line.
func queryValue(line, name string) string {
	_, q, _ := strings.Cut(line, "?")
	for _, kv := range strings.Split(q, "&") {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

var routedDecision = routing.Decision{Result: routing.Routed, Owner: 1001, Source: routing.SourceCRM,
	Targets: []routing.Target{{Endpoint: "PJSIP/101"}}}

// A routed call, start to end: how it ends decides the last requests, the rest is the same.
func TestRingBridgesAndEnds(t *testing.T) {
	cases := []struct {
		name string
		// end ends the bridged call: by an event, or by the reconciler's channel list when
		// the events were lost.
		end      func(k *call, leg string)
		lastReqs func(leg, bridge string) []string
	}{
		{
			name: "the manager hangs up",
			end:  func(k *call, leg string) { k.deliver(&ari.StasisEnd{Channel: ari.ChannelData{ID: leg}}) },
			lastReqs: func(_, bridge string) []string {
				return []string{"DELETE /channels/caller-1?reason=normal", "DELETE /bridges/" + bridge}
			},
		},
		{
			name: "the caller hangs up",
			end:  func(k *call, _ string) { k.deliver(&ari.StasisEnd{Channel: ari.ChannelData{ID: "caller-1"}}) },
			lastReqs: func(leg, bridge string) []string {
				return []string{"DELETE /channels/" + leg + "?reason=answered_elsewhere", "DELETE /bridges/" + bridge}
			},
		},
		{
			name: "the caller's channel is gone and its events were lost",
			end: func(k *call, leg string) {
				k.probe(channelSet{at: listedLater(), ids: map[string]bool{leg: true}})
			},
			lastReqs: func(leg, bridge string) []string {
				return []string{"DELETE /channels/" + leg + "?reason=answered_elsewhere", "DELETE /bridges/" + bridge}
			},
		},
		{
			name: "the manager's channel is gone and its events were lost",
			end: func(k *call, _ string) {
				k.probe(channelSet{at: listedLater(), ids: map[string]bool{"caller-1": true}})
			},
			lastReqs: func(_, bridge string) []string {
				return []string{"DELETE /channels/caller-1?reason=normal", "DELETE /bridges/" + bridge}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeARI(t)
			c := newTestController(t, f, make(chan routing.CallOutcome, 1))
			k := testCall(c)
			done := make(chan ringResult, 1)
			go func() { done <- k.ring(context.Background(), routedDecision, k.log) }()

			leg := queryValue(f.await("POST /channels?"), "channelId")
			require.True(t, strings.HasPrefix(leg, legPrefix), leg)
			bridge := bridgePrefix + strings.TrimPrefix(leg, legPrefix)
			k.deliver(&ari.StasisStart{Args: []string{legArg}, Channel: ari.ChannelData{ID: leg}})
			f.await("POST /bridges/" + bridge + "/addChannel")
			tc.end(k, leg)

			var r ringResult
			select {
			case r = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the call did not end")
			}
			assert.Equal(t, "PJSIP/101", r.endpoint)
			assert.True(t, r.ended)
			_, owned := c.bridges.Load(bridge)
			assert.False(t, owned, "the bridge is no longer the call's")

			want := append([]string{
				"POST /channels/caller-1/ring",
				`POST /channels?app=crmlink&appArgs=crmlink-leg&callerId="" <79161234567>&channelId=` + leg + "&endpoint=PJSIP/101&originator=caller-1&timeout=5",
				"POST /channels/caller-1/variable?value=ROUTED,,1001,crm,crmlink:ROUTED&variable=ARRAY(CRMLINK_RESULT,CRMLINK_REASON,CRMLINK_OWNER,CRMLINK_SOURCE,CDR(userfield))",
				"POST /channels/caller-1/answer",
				"POST /bridges/" + bridge + "?name=" + bridge + "&type=mixing",
				"POST /bridges/" + bridge + "/addChannel?channel=caller-1," + leg,
			}, tc.lastReqs(leg, bridge)...)
			assert.ElementsMatch(t, want, f.requests(), "8 ARI requests for a routed call")
		})
	}
}

// A call sent on to the fallback is followed there; it ends, with exactly one outcome,
// on its ChannelDestroyed, or on the reconciler's channel list when that event was lost.
func TestFollowEndsOnceWhenTheChannelIsGone(t *testing.T) {
	cases := []struct {
		name string
		end  func(k *call)
	}{
		{"ChannelDestroyed", func(k *call) { k.deliver(&ari.ChannelDestroyed{Channel: ari.ChannelData{ID: "caller-1"}}) }},
		{"channel list without it", func(k *call) { k.probe(channelSet{at: listedLater(), ids: map[string]bool{}}) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeARI(t)
			outcomes := make(chan routing.CallOutcome, 4)
			c := newTestController(t, f, outcomes)
			c.opts.Decider = routing.DeciderFunc(func(context.Context, routing.Call) routing.Decision {
				return routing.FallbackDecision(routing.ReasonNoOwner)
			})
			k := testCall(c)
			done := make(chan struct{})
			go func() { defer close(done); k.run(context.Background(), false) }()

			f.await("POST /channels/caller-1/continue")
			tc.end(k)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the call was not ended")
			}
			require.Len(t, outcomes, 1)
			o := <-outcomes
			assert.Equal(t, routing.ReasonNoOwner, o.Decision.Reason)
			assert.False(t, o.Answered)
			assert.Equal(t, []string{
				"POST /applications/crmlink/subscription?eventSource=channel:caller-1",
				"POST /channels/caller-1/variable?value=FALLBACK,no_owner,,,crmlink:no_owner&variable=ARRAY(CRMLINK_RESULT,CRMLINK_REASON,CRMLINK_OWNER,CRMLINK_SOURCE,CDR(userfield))",
				"POST /channels/caller-1/continue?context=crmlink-fallback&extension=200&priority=1",
			}, f.requests())
		})
	}
}

// A caller who hung up before being sent on is a finished call, reported once.
func TestFollowReportsACallerGoneBeforeContinue(t *testing.T) {
	f := newFakeARI(t)
	f.set("POST /channels/caller-1/continue", http.StatusNotFound, `{"message":"Channel not found"}`)
	outcomes := make(chan routing.CallOutcome, 4)
	c := newTestController(t, f, outcomes)
	k := testCall(c)

	k.follow(context.Background(), func() error { return k.fallback(context.Background(), routing.FallbackDecision(routing.ReasonNoOwner)) },
		&routing.CallOutcome{ID: "caller-1", Direction: routing.Incoming}, nil)
	require.Len(t, outcomes, 1)
}

// listedLaterBy puts a channel list after everything a test set up.
const listedLaterBy = time.Second

// listedLater is the time of a channel list asked for after everything the test set up.
func listedLater() time.Time { return time.Now().Add(listedLaterBy) }

func TestChannelSetGone(t *testing.T) {
	at := time.Now()
	s := channelSet{at: at, ids: map[string]bool{"here": true}}
	cases := []struct {
		name  string
		id    string
		since time.Time
		gone  bool
	}{
		{"listed", "here", at.Add(-time.Second), false},
		{"missing, known before the list", "away", at.Add(-time.Second), true},
		{"missing, known only since the list", "away", at.Add(time.Millisecond), false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.gone, s.gone(tc.id, tc.since), tc.name)
	}
}

// A continue that Asterisk does not answer is tried again; one that went through before
// its answer was lost (409 on the retry) counts as sent; a caller Asterisk never takes back
// is hung up and the call reported once, not left in silence in the application.
func TestFallbackRetriesThenHangsUp(t *testing.T) {
	fast := fallbackRetries
	fallbackRetries = []time.Duration{time.Millisecond, time.Millisecond}
	t.Cleanup(func() { fallbackRetries = fast })
	tests := []struct {
		name       string
		continues  []int // statuses of the successive continue requests
		wantHangup bool
		wantEmit   bool // reported without being followed
	}{
		{"second attempt goes through", []int{500, 200}, false, false},
		{"the first went through, its answer was lost", []int{500, 409}, false, false},
		{"caller hung up meanwhile", []int{500, 404}, false, true},
		{"Asterisk never takes the caller back", []int{500, 500, 500}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeARI(t)
			var mu sync.Mutex
			n := 0
			f.handle("POST /channels/caller-1/continue", func() int {
				mu.Lock()
				defer mu.Unlock()
				n++
				return tt.continues[min(n, len(tt.continues))-1]
			})
			outcomes := make(chan routing.CallOutcome, 4)
			c := newTestController(t, f, outcomes)
			k := testCall(c)
			done := make(chan struct{})
			go func() {
				defer close(done)
				k.follow(context.Background(), func() error {
					return k.fallback(context.Background(), routing.FallbackDecision(routing.ReasonNoOwner))
				}, &routing.CallOutcome{ID: "caller-1", Direction: routing.Incoming}, nil)
			}()
			if !tt.wantEmit {
				// Sent on: the call is followed in the dialplan until the reconciler's list
				// no longer has it.
				k.probes <- channelSet{at: listedLater()}
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("follow did not return")
			}
			mu.Lock()
			require.Equal(t, len(tt.continues), n, "continue attempts")
			mu.Unlock()
			hungUp := slices.Contains(f.requests(), "DELETE /channels/caller-1?reason=normal")
			require.Equal(t, tt.wantHangup, hungUp, "%q", f.requests())
			require.Len(t, outcomes, 1, "the call is reported once")
		})
	}
}
