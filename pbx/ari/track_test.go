package ari

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
)

// at is a moment of the test call, ms milliseconds after its start, as ARI writes it.
func at(ms int) string {
	return time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond).Format(asteriskTime)
}

// ch is a channel of call "L" as the observer's events show it.
func ch(id, name, number, exten string, vars ...string) *obsChannel {
	c := &obsChannel{ID: id, Name: name, Vars: map[string]string{linkedIDVar: "L"}}
	c.Caller.Number, c.Dialplan.Exten = number, exten
	for i := 0; i+1 < len(vars); i += 2 {
		c.Vars[vars[i]] = vars[i+1]
	}
	return c
}

func created(ms int, c *obsChannel) obsEvent {
	return obsEvent{Type: "ChannelCreated", Timestamp: at(ms), Channel: c}
}

func destroyed(ms int, c *obsChannel) obsEvent {
	return obsEvent{Type: "ChannelDestroyed", Timestamp: at(ms), Channel: c}
}

func dialed(ms int, caller, peer *obsChannel, status, dialstring string) obsEvent {
	return obsEvent{Type: "Dial", Timestamp: at(ms), Caller: caller, Peer: peer, Dialstatus: status, Dialstring: dialstring}
}

// twoPartyCall is a caller that dials a peer, rung at 100 ms, answered at answerMS (0:
// never) and hung up at 5000 ms.
func twoPartyCall(caller, peer *obsChannel, dialstring string, answerMS int) []obsEvent {
	es := []obsEvent{created(0, caller), created(100, peer), dialed(100, caller, peer, "", dialstring)}
	if answerMS > 0 {
		es = append(es, dialed(answerMS, caller, peer, "ANSWER", ""))
	} else {
		es = append(es, dialed(5000, caller, peer, "CANCEL", ""))
	}
	return append(es, destroyed(5000, peer), destroyed(5000, caller))
}

func TestTrackerOutcomes(t *testing.T) {
	managers := map[string]crm.UserID{"PJSIP/101": 1001, "PJSIP/102": 1002}
	trunk := func(number string, vars ...string) *obsChannel {
		return ch("L", "PJSIP/trunk-00000001", number, "701", vars...)
	}
	anna := ch("P", "PJSIP/101-00000002", "101", "s")
	tests := []struct {
		name   string
		events []obsEvent
		want   *routing.CallOutcome // nil: nothing recorded
	}{
		{"direct call answered by a manager", twoPartyCall(trunk("84951000001"), anna, "101", 1500),
			&routing.CallOutcome{ID: "L", Direction: routing.Incoming, Caller: "84951000001", Called: "701", Answered: true,
				AnsweredBy: 1001, FirstOperator: 1001, RingDuration: 1400 * time.Millisecond, TalkDuration: 3500 * time.Millisecond}},
		{"missed call", twoPartyCall(trunk("84951000001"), anna, "101", 0),
			&routing.CallOutcome{ID: "L", Direction: routing.Incoming, Caller: "84951000001", Called: "701",
				FirstOperator: 1001, RingDuration: 4900 * time.Millisecond}},
		{"FastAGI's decision left on the channel",
			twoPartyCall(trunk("84951000001", "CRMLINK_RESULT", "ROUTED", "CRMLINK_OWNER", "1001", "CRMLINK_SOURCE", "crm"), anna, "101", 1500),
			&routing.CallOutcome{ID: "L", Direction: routing.Incoming, Caller: "84951000001", Called: "701", Answered: true,
				AnsweredBy: 1001, FirstOperator: 1001, RingDuration: 1400 * time.Millisecond, TalkDuration: 3500 * time.Millisecond,
				Decision: routing.Decision{Result: routing.Routed, Owner: 1001, Source: routing.SourceCRM}}},
		{"through Stasis: the controller reports it", twoPartyCall(trunk("84951000001", stasisStatusVar, "SUCCESS"), anna, "101", 1500), nil},
		{"a controller's leg took part", twoPartyCall(trunk("84951000001"), ch(legPrefix+"1", "PJSIP/101-00000002", "", "s"), "", 1500), nil},
		{"withheld number", twoPartyCall(trunk("anonymous"), anna, "101", 1500), nil},
		{"internal call", twoPartyCall(ch("L", "PJSIP/101-00000001", "101", "102"), ch("P", "PJSIP/102-00000002", "102", "s"), "102", 1500), nil},
		{"outgoing call answered", twoPartyCall(ch("L", "PJSIP/101-00000001", "101", "989161234567"), ch("P", "PJSIP/trunk-00000002", "", "s"), "89161234567@trunk", 1500),
			&routing.CallOutcome{ID: "L", Direction: routing.Outgoing, Caller: "101", Called: "89161234567", Manager: 1001, Answered: true,
				RingDuration: 1400 * time.Millisecond, TalkDuration: 3500 * time.Millisecond}},
		{"outgoing call not reached", twoPartyCall(ch("L", "PJSIP/101-00000001", "101", "989161234567"), ch("P", "PJSIP/trunk-00000002", "", "s"), "89161234567@trunk", 0),
			&routing.CallOutcome{ID: "L", Direction: routing.Outgoing, Caller: "101", Called: "89161234567", Manager: 1001,
				RingDuration: 4900 * time.Millisecond}},
		{"channels from before the observer connected", []obsEvent{destroyed(5000, anna), destroyed(5000, trunk("84951000001"))}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker(managers, []string{"PJSIP/100"})
			var got []routing.CallOutcome
			for _, e := range tc.events {
				if o, done := tr.feed(e); done {
					got = append(got, o)
				}
			}
			assert.Empty(t, tr.calls, "a finished call is forgotten")
			assert.Empty(t, tr.byChannel)
			if tc.want == nil {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1, "one outcome per call")
			tc.want.Start = got[0].Start
			assert.Equal(t, *tc.want, got[0])
			assert.Equal(t, at(0), got[0].Start.Format(asteriskTime))
		})
	}
}

// After a websocket drop, calls whose channels are all gone are dropped unrecorded; a call
// still up is followed to its end.
func TestTrackerForgetsCallsThatEndedInAGap(t *testing.T) {
	tr := newTracker(map[string]crm.UserID{"PJSIP/101": 1001}, nil)
	up := ch("L", "PJSIP/trunk-00000001", "84951000001", "701")
	up.Vars[linkedIDVar] = "UP"
	gone := ch("G", "PJSIP/trunk-00000002", "84951000002", "701")
	gone.Vars[linkedIDVar] = "GONE"
	for _, e := range []obsEvent{created(0, up), created(0, gone)} {
		_, done := tr.feed(e)
		require.False(t, done)
	}
	assert.Equal(t, 1, tr.forgetGone(map[string]bool{"L": true}))
	assert.Len(t, tr.calls, 1)
	o, done := tr.feed(destroyed(1000, up))
	require.True(t, done)
	assert.Equal(t, "UP", o.ID)
}
