package ari

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/routing"
)

// startObservingInbound serves an Inbound whose call observer (application
// crmlink-observer) takes the Asterisks' connections; outcomes arrive on the channel.
func startObservingInbound(t *testing.T) (*Inbound, *Observer, string, <-chan routing.CallOutcome) {
	t.Helper()
	return startObservingInboundLogged(t, zerolog.Nop())
}

func startObservingInboundLogged(t *testing.T, log zerolog.Logger) (*Inbound, *Observer, string, <-chan routing.CallOutcome) {
	t.Helper()
	outcomes := make(chan routing.CallOutcome, 10)
	obs, err := NewObserver(ObserverOptions{
		Application: "crmlink-observer", Inbound: true, Logger: log,
		PresenceTTL: time.Hour, // lists expire when a test says
		Managers:    map[string]crm.UserID{"PJSIP/101": 1001},
		OnOutcome:   func(o routing.CallOutcome) { outcomes <- o },
	})
	require.NoError(t, err)
	in, url := startInboundLogged(t, log, obs)
	return in, obs, url, outcomes
}

// fakeAsterisk is one Asterisk's outbound websocket as the observer sees it.
type fakeAsterisk struct {
	t  *testing.T
	ws *websocket.Conn
	id string
	// name is the system name it answers (asterisk.conf systemname).
	name string
}

func connectAsterisk(t *testing.T, url, app, id string) *fakeAsterisk {
	t.Helper()
	ws, err := asteriskDial(t, url, "asterisk", "secret")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.Close() })
	require.NoError(t, websocket.Message.Send(ws, `{"type":"ApplicationRegistered","application":"`+app+`","asterisk_id":"`+id+`"}`))
	return &fakeAsterisk{t: t, ws: ws, id: id, name: strings.Replace(id, "02:", "pbx-", 1)}
}

func (a *fakeAsterisk) systemName() string { return a.name }

// request reads the next REST request crmlink sends over the connection.
func (a *fakeAsterisk) request() restRequestMsg {
	a.t.Helper()
	_ = a.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var req restRequestMsg
	require.NoError(a.t, websocket.JSON.Receive(a.ws, &req))
	return req
}

func (a *fakeAsterisk) answer(req restRequestMsg, status int, body string) {
	a.t.Helper()
	msg, _ := json.Marshal(restResponseMsg{Type: restResponseEvent, RequestID: req.RequestID, StatusCode: status, MessageBody: body})
	require.NoError(a.t, websocket.Message.Send(a.ws, string(msg)))
}

func (a *fakeAsterisk) send(e obsEvent) {
	a.t.Helper()
	data, err := json.Marshal(e)
	require.NoError(a.t, err)
	require.NoError(a.t, websocket.Message.Send(a.ws, string(data)))
}

// setUp answers the observer's set-up: Asterisk's system name (its id with "pbx-" for
// "02:"), the event filter (which must let the REST answers through), the subscription to
// every channel and the list of channels (none).
func (a *fakeAsterisk) setUp(app string) {
	a.t.Helper()
	req := a.request()
	require.Equal(a.t, "GET asterisk/info", req.Method+" "+req.URI)
	assert.Equal(a.t, []nameValue{{"only", "config"}}, req.QueryStrings)
	a.answer(req, 200, `{"config":{"name":"`+a.systemName()+`"}}`)
	req = a.request()
	require.Equal(a.t, "PUT applications/"+app+"/eventFilter", req.Method+" "+req.URI)
	assert.Contains(a.t, req.MessageBody, `"`+restResponseEvent+`"`, "the filter lets the REST answers through")
	assert.Contains(a.t, req.MessageBody, `"ChannelDestroyed"`)
	a.answer(req, 204, "")
	req = a.request()
	require.Equal(a.t, "POST applications/"+app+"/subscription", req.Method+" "+req.URI)
	assert.Equal(a.t, []nameValue{{"eventSource", "channel:"}}, req.QueryStrings)
	a.answer(req, 200, "{}")
	req = a.request()
	require.Equal(a.t, "GET channels", req.Method+" "+req.URI)
	a.answer(req, 200, "[]")
}

// Two Asterisks connect the observer's application: each is set up over its own
// connection, and each call's outcome names the Asterisk it was on.
func TestInboundObserverFollowsEveryAsterisk(t *testing.T) {
	in, obs, url, outcomes := startObservingInbound(t)
	one := connectAsterisk(t, url, "crmlink-observer", "02:00:00:00:00:01")
	one.setUp("crmlink-observer")
	two := connectAsterisk(t, url, "crmlink-observer", "02:00:00:00:00:02")
	two.setUp("crmlink-observer")
	require.Eventually(t, func() bool { return obs.Connections() == 2 }, 5*time.Second, 10*time.Millisecond)
	assert.Zero(t, in.Connections(), "no Stasis controller: these are the observer's connections")

	// The same channel ids on both (two Asterisks started together), told apart by the
	// connection they came on.
	anna := ch("P", "PJSIP/101-00000002", "101", "s")
	for _, a := range []*fakeAsterisk{one, two} {
		for _, e := range twoPartyCall(ch("L", "PJSIP/trunk-00000001", "84951000001", "301", "CRMLINK_RESULT", "ROUTED"), anna, "101", 1500) {
			a.send(e)
		}
	}
	got := map[string]routing.CallOutcome{}
	for range 2 {
		select {
		case o := <-outcomes:
			got[o.Asterisk] = o
		case <-time.After(5 * time.Second):
			t.Fatalf("outcomes: %v", got)
		}
	}
	for _, a := range []*fakeAsterisk{one, two} {
		o, ok := got[a.id]
		require.True(t, ok, "an outcome naming %s: %v", a.id, got)
		assert.Equal(t, "L", o.ID)
		assert.True(t, o.Answered)
		assert.Equal(t, crm.UserID(1001), o.AnsweredBy)
	}

	require.NoError(t, one.ws.Close())
	require.Eventually(t, func() bool { return obs.Connections() == 1 }, 5*time.Second, 10*time.Millisecond, "forgotten once Asterisk's websocket closes")
}

// A reload of Asterisk's outbound websocket configuration registers the application anew
// (ApplicationReplaced) without the filter and subscription: crmlink closes the connection
// so that Asterisk reconnects and the set-up runs again.
// An Asterisk without a systemname is followed all the same, and the administrator is told,
// as an error, what that costs with several Asterisks.
func TestInboundObserverNamesAMissingSystemName(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sysName  string
		wantWarn bool
	}{
		{"without systemname", "", true},
		{"with systemname", "pbx-1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf testrig.LogBuffer
			_, obs, url, _ := startObservingInboundLogged(t, zerolog.New(&buf))
			a := connectAsterisk(t, url, "crmlink-observer", "02:00:00:00:00:01")
			a.name = tc.sysName
			a.setUp("crmlink-observer")
			require.Eventually(t, obs.Connected, 5*time.Second, 10*time.Millisecond)
			logged := buf.String()
			assert.Equal(t, tc.wantWarn, strings.Contains(logged, `"level":"error"`) && strings.Contains(logged, "no systemname"), logged)
		})
	}
}

func TestInboundObserverClosesOnApplicationReplaced(t *testing.T) {
	_, obs, url, _ := startObservingInbound(t)
	a := connectAsterisk(t, url, "crmlink-observer", "02:00:00:00:00:01")
	a.setUp("crmlink-observer")
	require.Eventually(t, obs.Connected, 5*time.Second, 10*time.Millisecond)
	a.send(obsEvent{Type: "ApplicationReplaced"})
	_ = a.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var msg []byte
	require.Error(t, websocket.Message.Receive(a.ws, &msg), "crmlink closes the connection")
	require.Eventually(t, func() bool { return !obs.Connected() }, 5*time.Second, 10*time.Millisecond)
}

// The router learns whether a phone is registered from the connection of the call's
// Asterisk; a call whose Asterisk it does not know asks every connected one.
func TestInboundPresence(t *testing.T) {
	in, obs, url, _ := startObservingInbound(t)
	_, err := in.Presence().EndpointsOnline(context.Background(), "", []string{"PJSIP/101"})
	require.ErrorIs(t, err, errNoAsterisk, "no Asterisk connected: unknown, and the router rings every phone")

	one := connectAsterisk(t, url, "crmlink-observer", "02:00:00:00:00:01")
	one.setUp("crmlink-observer")
	two := connectAsterisk(t, url, "crmlink-observer", "02:00:00:00:00:02")
	two.setUp("crmlink-observer")
	require.Eventually(t, func() bool { return obs.Connections() == 2 }, 5*time.Second, 10*time.Millisecond)

	// Each Asterisk answers for PJSIP/101 as it sees it: its endpoint list first (kept for
	// the TTL, an hour here), then PJSIP/101 alone while the list has it offline.
	states := map[*fakeAsterisk]string{one: "offline", two: "online"}
	type asked struct {
		a   *fakeAsterisk
		uri string
	}
	answer := func(q asked, req restRequestMsg) {
		assert.Equal(t, "GET "+q.uri, req.Method+" "+req.URI)
		if q.uri == "endpoints" {
			q.a.answer(req, 200, `[{"technology":"PJSIP","resource":"101","state":"`+states[q.a]+`"}]`)
			return
		}
		q.a.answer(req, 200, `{"state":"`+states[q.a]+`"}`)
	}
	ask := func(asterisk string, asks ...asked) []bool {
		t.Helper()
		type result struct {
			on  []bool
			err error
		}
		res := make(chan result, 1)
		go func() {
			on, err := in.Presence().EndpointsOnline(context.Background(), asterisk, []string{"PJSIP/101", "PJSIP/7916@trunk"})
			res <- result{on, err}
		}()
		// Every request read before any is answered: the Asterisks are asked at once.
		reqs := make([]restRequestMsg, len(asks))
		for i, q := range asks {
			reqs[i] = q.a.request()
		}
		for i, q := range asks {
			answer(q, reqs[i])
		}
		r := <-res
		require.NoError(t, r.err)
		return r.on
	}
	assert.Equal(t, []bool{false, true}, ask(one.id, asked{one, "endpoints"}), "the call's Asterisk: offline there (a trunk dial string counts as online)")
	assert.Equal(t, []bool{true, true}, ask(two.id, asked{two, "endpoints"}), "the call's Asterisk: online there")
	assert.Equal(t, []bool{true, true}, ask(two.id), "online in its list: nothing asked")
	assert.Equal(t, []bool{true, true}, ask("", asked{one, "endpoints/PJSIP/101"}),
		"Asterisk unknown: each asked (two from its list, one about the phone its list has offline), online on one")

	require.NoError(t, two.ws.Close())
	require.Eventually(t, func() bool {
		in.presence.mu.Lock()
		defer in.presence.mu.Unlock()
		return len(in.presence.by[two.id]) == 0 && obs.Connections() == 1
	}, 5*time.Second, 10*time.Millisecond, "the closed connection answers no more")
	assert.Equal(t, []bool{false, true}, ask("", asked{one, "endpoints/PJSIP/101"}), "Asterisk unknown: the connected one answers")
	assert.Equal(t, []bool{false, true}, ask(one.systemName(), asked{one, "endpoints/PJSIP/101"}), "a FastAGI call names its Asterisk by system name")
	_, err = in.Presence().EndpointsOnline(context.Background(), two.id, []string{"PJSIP/101"})
	assert.ErrorIs(t, err, errNoAsterisk, "the call's Asterisk is not connected here: unknown (the phone may be registered there)")
}
