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
	annaTalked := []routing.Talker{{Endpoint: "PJSIP/101", User: 1001, Talk: 3500 * time.Millisecond}}
	tests := []struct {
		name   string
		events []obsEvent
		want   *routing.CallOutcome // nil: nothing recorded
	}{
		{"direct call answered by a manager", twoPartyCall(trunk("84951000001"), anna, "101", 1500),
			&routing.CallOutcome{ID: "L", Direction: routing.Incoming, Caller: "84951000001", Called: "701", Answered: true,
				AnsweredBy: 1001, FirstOperator: 1001, RingDuration: 1400 * time.Millisecond, TalkDuration: 3500 * time.Millisecond,
				Talkers: annaTalked}},
		{"missed call", twoPartyCall(trunk("84951000001"), anna, "101", 0),
			&routing.CallOutcome{ID: "L", Direction: routing.Incoming, Caller: "84951000001", Called: "701",
				FirstOperator: 1001, RingDuration: 4900 * time.Millisecond}},
		{"FastAGI's decision left on the channel",
			twoPartyCall(trunk("84951000001", "CRMLINK_RESULT", "ROUTED", "CRMLINK_OWNER", "1001", "CRMLINK_SOURCE", "crm"), anna, "101", 1500),
			&routing.CallOutcome{ID: "L", Direction: routing.Incoming, Caller: "84951000001", Called: "701", Answered: true,
				AnsweredBy: 1001, FirstOperator: 1001, RingDuration: 1400 * time.Millisecond, TalkDuration: 3500 * time.Millisecond,
				Decision: routing.Decision{Result: routing.Routed, Owner: 1001, Source: routing.SourceCRM}, Talkers: annaTalked}},
		{"through Stasis: the controller reports it", twoPartyCall(trunk("84951000001", stasisStatusVar, "SUCCESS"), anna, "101", 1500), nil},
		{"a controller's leg took part", twoPartyCall(trunk("84951000001"), ch(legPrefix+"1", "PJSIP/101-00000002", "", "s"), "", 1500), nil},
		{"withheld number", twoPartyCall(trunk("anonymous"), anna, "101", 1500), nil},
		{"a name for a number", twoPartyCall(trunk("John"), anna, "101", 1500), nil},
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

// feedAll feeds the events and returns the outcomes, checking that the tracker forgets
// every call once its channels are gone.
func feedAll(t *testing.T, tr *tracker, events ...obsEvent) []routing.CallOutcome {
	t.Helper()
	var got []routing.CallOutcome
	for _, e := range events {
		if o, done := tr.feed(e); done {
			got = append(got, o)
		}
	}
	assert.Empty(t, tr.calls, "a finished call is forgotten")
	assert.Empty(t, tr.byChannel)
	return got
}

// moveTo is a channel as it shows after an attended transfer gave it call L's linkedid.
func moveTo(c *obsChannel, linkedID string) *obsChannel {
	m := *c
	m.Vars = map[string]string{linkedIDVar: linkedID}
	return &m
}

// Who talked, and whom the CRM credits, on calls that pass from one manager to another:
// a queue (members ring together; a member who rang but did not answer did not talk), a
// blind transfer (the client's channel dials the target), an attended transfer (the
// target's channel, dialled in the consultation call, joins the client's call).
func TestTrackerTalkersAndCredit(t *testing.T) {
	managers := map[string]crm.UserID{"PJSIP/101": 1001, "PJSIP/102": 1002}
	names := map[crm.UserID]string{1001: "Anna", 1002: "Boris"}
	client := ch("L", "PJSIP/trunk-00000001", "84951000001", "380")
	anna := ch("A", "PJSIP/101-00000002", "", "s")
	boris := ch("B", "PJSIP/102-00000003", "", "s")
	queue := []obsEvent{created(0, client), created(100, anna), dialed(100, client, anna, "", "PJSIP/101"),
		created(100, boris), dialed(100, client, boris, "", "PJSIP/102"),
		dialed(1000, client, boris, "ANSWER", ""), dialed(1000, client, anna, "CANCEL", ""), destroyed(1000, anna),
		destroyed(4000, boris), destroyed(4000, client)}
	borisB := ch("B", "PJSIP/102-00000003", "", "s")
	blind := []obsEvent{created(0, client), created(100, anna), dialed(100, client, anna, "", "101"),
		dialed(1000, client, anna, "ANSWER", ""), destroyed(3000, anna), // REFER: Anna's phone leaves
		created(3000, borisB), dialed(3000, client, borisB, "", "102"), dialed(3500, client, borisB, "ANSWER", ""),
		destroyed(6000, borisB), destroyed(6000, client)}
	// The consultation call C: Anna's second line dials Boris.
	annaC := &obsChannel{ID: "C", Name: "PJSIP/101-00000004", Vars: map[string]string{linkedIDVar: "C"}}
	borisC := &obsChannel{ID: "D", Name: "PJSIP/102-00000005", Vars: map[string]string{linkedIDVar: "C"}}
	attended := []obsEvent{created(0, client), created(100, anna), dialed(100, client, anna, "", "101"),
		dialed(1000, client, anna, "ANSWER", ""),
		created(2000, annaC), created(2000, borisC), dialed(2000, annaC, borisC, "", "102"), dialed(2500, annaC, borisC, "ANSWER", ""),
		destroyed(3000, anna), // REFER with Replaces: Anna's lines leave, Boris's joins the client
		{Type: "ChannelConnectedLine", Timestamp: at(3000), Channel: moveTo(borisC, "L")},
		destroyed(3000, annaC), destroyed(7000, moveTo(borisC, "L")), destroyed(7000, client)}
	tests := []struct {
		name    string
		events  []obsEvent
		credit  Credit
		want    crm.UserID
		talkers []routing.Talker
	}{
		{"queue: the second member answers", queue, CreditLastAnswered, 1002,
			[]routing.Talker{{Endpoint: "PJSIP/102", User: 1002, Name: "Boris", Talk: 3 * time.Second}}},
		{"blind transfer, last answered", blind, CreditLastAnswered, 1002,
			[]routing.Talker{{Endpoint: "PJSIP/101", User: 1001, Name: "Anna", Talk: 2 * time.Second}, {Endpoint: "PJSIP/102", User: 1002, Name: "Boris", Talk: 2500 * time.Millisecond}}},
		{"blind transfer, first answered", blind, CreditFirstAnswered, 1001,
			[]routing.Talker{{Endpoint: "PJSIP/101", User: 1001, Name: "Anna", Talk: 2 * time.Second}, {Endpoint: "PJSIP/102", User: 1002, Name: "Boris", Talk: 2500 * time.Millisecond}}},
		{"attended transfer", attended, CreditLastAnswered, 1002,
			[]routing.Talker{{Endpoint: "PJSIP/101", User: 1001, Name: "Anna", Talk: 2 * time.Second}, {Endpoint: "PJSIP/102", User: 1002, Name: "Boris", Talk: 4 * time.Second}}},
		{"attended transfer, first answered", attended, CreditFirstAnswered, 1001,
			[]routing.Talker{{Endpoint: "PJSIP/101", User: 1001, Name: "Anna", Talk: 2 * time.Second}, {Endpoint: "PJSIP/102", User: 1002, Name: "Boris", Talk: 4 * time.Second}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker(managers, nil)
			tr.names, tr.credit = names, tc.credit
			got := feedAll(t, tr, tc.events...)
			require.Len(t, got, 1, "one outcome for the client's call; the consultation call is internal")
			o := got[0]
			assert.Equal(t, "L", o.ID)
			assert.True(t, o.Answered)
			assert.Equal(t, tc.want, o.AnsweredBy)
			assert.Equal(t, crm.UserID(1001), o.FirstOperator, "the first phone that rang")
			assert.Equal(t, tc.talkers, o.Talkers)
		})
	}
}

// A caller who hangs up in the queue while the members ring is a missed call: ringing
// members did not talk.
func TestTrackerQueueAbandonIsMissed(t *testing.T) {
	client := ch("L", "PJSIP/trunk-00000001", "84951000001", "380")
	anna := ch("A", "PJSIP/101-00000002", "", "s")
	boris := ch("B", "PJSIP/102-00000003", "", "s")
	got := feedAll(t, newTracker(map[string]crm.UserID{"PJSIP/101": 1001, "PJSIP/102": 1002}, nil),
		created(0, client), created(100, anna), dialed(100, client, anna, "", "PJSIP/101"),
		created(100, boris), dialed(100, client, boris, "", "PJSIP/102"),
		dialed(4000, client, anna, "CANCEL", ""), dialed(4000, client, boris, "CANCEL", ""),
		destroyed(4000, anna), destroyed(4000, boris), destroyed(4000, client))
	require.Len(t, got, 1)
	assert.False(t, got[0].Answered)
	assert.Zero(t, got[0].AnsweredBy)
	assert.Empty(t, got[0].Talkers)
	assert.Equal(t, crm.UserID(1001), got[0].FirstOperator)
}

// Calls already going on when the observer connects (crmlink restarted mid-call) are
// followed to their end: the phone that is up talked from then on; its talk before is not
// invented. A channel listed and then announced by its event counts once.
func TestTrackerSeedsCallsInProgress(t *testing.T) {
	tr := newTracker(map[string]crm.UserID{"PJSIP/102": 1002}, nil)
	client := ch("L", "PJSIP/trunk-00000001", "84951000001", "380")
	client.State, client.Created = "Up", at(0)
	boris := ch("B", "PJSIP/102-00000003", "", "s")
	boris.State, boris.Created = "Up", at(100)
	now, _ := time.Parse(asteriskTime, at(2000))
	tr.seed([]obsChannel{*boris, *client}, now)
	got := feedAll(t, tr, created(100, boris), destroyed(5000, boris), destroyed(5000, client))
	require.Len(t, got, 1)
	o := got[0]
	assert.Equal(t, "84951000001", o.Caller)
	assert.Equal(t, crm.UserID(1002), o.AnsweredBy)
	assert.Equal(t, 3*time.Second, o.TalkDuration, "talk from when the observer saw it")
}

// After a websocket drop, the channels that came and went meanwhile are counted from the
// holes in Asterisk's channel numbers: not those still up, not more than there were.
func TestTrackerCountsChannelsOfTheGap(t *testing.T) {
	tr := newTracker(nil, nil)
	assert.Zero(t, tr.gap([]obsChannel{{ID: "1796426392.7"}}), "the first connection has no gap")
	c := ch("1796426392.10", "PJSIP/trunk-0000000a", "84951000001", "701")
	c.Vars[linkedIDVar] = c.ID
	feedAll(t, tr, created(0, c), destroyed(100, c))
	// Down; channels 11 to 15 were made meanwhile, 15 is still up; then up again.
	assert.Equal(t, int64(4), tr.gap([]obsChannel{{ID: "1796426399.15"}}))
	assert.Zero(t, tr.gap([]obsChannel{{ID: "1796426399.15"}}), "counted once")
	assert.Zero(t, tr.gap([]obsChannel{{ID: "1796426500.3"}}), "Asterisk restarted: numbers start again")
	assert.Equal(t, int64(2), tr.gap([]obsChannel{{ID: "1796426500.3"}, {ID: "1796426500.6"}}), "4 and 5 came and went")
	assert.Zero(t, tr.gap(nil), "nothing live: nothing known")
	assert.Equal(t, int64(0), channelSeq(legPrefix+"ab"))
}
