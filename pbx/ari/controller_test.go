package ari

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/routing"
)

const filteredApp = `{"name":"crmlink","events_allowed":[{"type":"StasisStart"},{"type":"StasisEnd"},{"type":"ChannelDestroyed"},{"type":"Dial"},{"type":"ChannelUserevent"},{"type":"RESTResponse"}]}`

// Each reconcile restores the event filter when another ARI client cleared or changed it.
func TestTickRestoresTheEventFilter(t *testing.T) {
	cases := []struct {
		name     string
		app      string
		restored bool
	}{
		{"filter in place", filteredApp, false},
		{"filter cleared", `{"name":"crmlink","events_allowed":[],"events_disallowed":[]}`, true},
		{"filter changed", `{"name":"crmlink","events_allowed":[],"events_disallowed":[{"type":"ChannelVarset"}]}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeARI(t)
			f.set("GET /applications/crmlink", http.StatusOK, tc.app)
			f.set("GET /channels", http.StatusOK, `[]`)
			f.set("GET /bridges", http.StatusOK, `[]`)
			f.set("GET /endpoints", http.StatusOK, `[]`)
			c := newTestController(t, f, make(chan routing.CallOutcome, 1))

			c.tick(context.Background(), zerolog.Nop())
			assert.Equal(t, tc.restored, contains(f.requests(), "PUT /applications/crmlink/eventFilter"))
		})
	}
}

// A stuck call no longer owns its bridge once the reconciler ends it: the call deletes the
// bridge itself, and the goroutine exits with its one outcome.
func TestTickEndsACallWhoseCallerVanished(t *testing.T) {
	f := newFakeARI(t)
	f.set("GET /applications/crmlink", http.StatusOK, filteredApp)
	f.set("GET /channels", http.StatusOK, `[]`)
	f.set("GET /bridges", http.StatusOK, `[]`)
	f.set("GET /endpoints", http.StatusOK, `[]`)
	outcomes := make(chan routing.CallOutcome, 4)
	c := newTestController(t, f, outcomes)
	c.opts.Decider = routing.DeciderFunc(func(context.Context, routing.Call) routing.Decision {
		return routing.FallbackDecision(routing.ReasonNotFound)
	})
	k := testCall(c)
	k.start = k.start.Add(-listedLaterBy)
	done := make(chan struct{})
	go func() { defer close(done); defer k.forget(); k.run(context.Background(), false) }()
	f.await("POST /channels/caller-1/continue")

	c.tick(context.Background(), zerolog.Nop())
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the call was not ended")
	}
	assert.Len(t, outcomes, 1)
	_, tracked := c.calls.Load("caller-1")
	assert.False(t, tracked)
}

func contains(lines []string, prefix string) bool {
	for _, l := range lines {
		if len(l) >= len(prefix) && l[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

// chanSub is an ari.Subscription fed by the test.
type chanSub chan ari.Event

func (s chanSub) Events() <-chan ari.Event { return s }
func (s chanSub) Cancel()                  {}

// An originate that times out under load may still go through: the manager's phone rings
// and answers after the call has gone on to the fallback. That leg enters the application
// owned by no call; it is hung up when its StasisStart comes, and by the reconciler when
// that event was lost. A leg its call still rings, or one bridged (a call from before a
// restart), is left alone.
func TestOrphanLegsAreHungUp(t *testing.T) {
	f := newFakeARI(t)
	f.set("GET /applications/crmlink", http.StatusOK, filteredApp)
	f.set("GET /endpoints", http.StatusOK, `[]`)
	f.set("POST /channels", http.StatusInternalServerError, `{"message":"slow"}`)
	leg := func(id string) string {
		return `{"id":"` + id + `","name":"PJSIP/101-1","state":"Up","dialplan":{"context":"from-office","exten":"s","priority":1,"app_name":"Stasis","app_data":"crmlink,crmlink-leg"}}`
	}
	f.set("GET /channels", http.StatusOK, `[`+leg("crmlink-leg-lost")+`,`+leg("crmlink-leg-bridged")+`,`+leg("crmlink-leg-ringing")+`]`)
	f.set("GET /bridges", http.StatusOK, `[{"id":"crmlink-br-bridged","channels":["old-caller","crmlink-leg-bridged"]}]`)
	outcomes := make(chan routing.CallOutcome, 4)
	c := newTestController(t, f, outcomes)
	c.opts.Decider = routing.DeciderFunc(func(context.Context, routing.Call) routing.Decision { return routedDecision })

	// The originate fails: the call goes on to the fallback and no longer owns the leg.
	k := testCall(c)
	go func() { defer k.forget(); k.run(context.Background(), false) }()
	legID := queryValue(f.await("POST /channels?"), "channelId")
	require.NotEmpty(t, legID)
	f.await("POST /channels/caller-1/continue")
	_, owned := c.calls.Load(legID)
	assert.False(t, owned, "a leg whose call stopped ringing is released")

	// ... and its StasisStart comes.
	sub := make(chanSub, 1)
	stop := make(chan struct{})
	dispatched := make(chan struct{})
	go func() { defer close(dispatched); c.dispatch(context.Background(), stop, sub, zerolog.Nop()) }()
	sub <- &ari.StasisStart{Args: []string{legArg}, Channel: ari.ChannelData{ID: legID}}
	f.await("DELETE /channels/" + legID + "?reason=normal")
	close(stop)
	<-dispatched

	// The reconciler: one leg whose StasisStart was lost, one bridged, one a call rings.
	c.calls.Store("crmlink-leg-ringing", k)
	c.reconcile(context.Background(), zerolog.Nop())
	c.wg.Wait()
	assert.False(t, contains(f.requests(), "DELETE /channels/crmlink-leg-lost"), "a leg is seen twice before it is hung up")
	c.reconcile(context.Background(), zerolog.Nop())
	f.await("DELETE /channels/crmlink-leg-lost?reason=normal")
	c.wg.Wait()
	assert.False(t, contains(f.requests(), "DELETE /channels/crmlink-leg-bridged"))
	assert.False(t, contains(f.requests(), "DELETE /channels/crmlink-leg-ringing"))
}

// An answered caller in the application that no call owns and no bridge holds (crmlink
// stopped between answering it and bridging it) is sent to the fallback as interrupted
// once it has been seen on two reconciles; a bridged call from before a restart, and a
// caller a call owns, are left alone.
func TestStrandedCallerGoesToTheFallback(t *testing.T) {
	f := newFakeARI(t)
	f.set("GET /applications/crmlink", http.StatusOK, filteredApp)
	f.set("GET /endpoints", http.StatusOK, `[]`)
	caller := func(id string) string {
		return `{"id":"` + id + `","name":"PJSIP/trunk-1","state":"Up","dialplan":{"context":"from-trunk","exten":"200","priority":2,"app_name":"Stasis","app_data":"crmlink,incoming"}}`
	}
	f.set("GET /channels", http.StatusOK, `[`+caller("stranded")+`,`+caller("old-caller")+`,`+caller("owned")+`]`)
	f.set("GET /bridges", http.StatusOK, `[{"id":"crmlink-br-old","channels":["old-caller","crmlink-leg-old"]}]`)
	c := newTestController(t, f, make(chan routing.CallOutcome, 4))
	c.calls.Store("owned", testCall(c))

	c.reconcile(context.Background(), zerolog.Nop())
	c.wg.Wait()
	assert.False(t, contains(f.requests(), "POST /channels/stranded/continue"), "seen once: left alone")
	c.reconcile(context.Background(), zerolog.Nop())
	c.wg.Wait()
	assert.Contains(t, f.requests(), "POST /channels/stranded/variable?value=FALLBACK,interrupted,,,crmlink:interrupted&variable=ARRAY(CRMLINK_RESULT,CRMLINK_REASON,CRMLINK_OWNER,CRMLINK_SOURCE,CDR(userfield))")
	assert.Contains(t, f.requests(), "POST /channels/stranded/continue?context=crmlink-fallback&extension=200&priority=1")
	for _, id := range []string{"old-caller", "owned"} {
		assert.False(t, contains(f.requests(), "POST /channels/"+id+"/continue"), id)
		assert.False(t, contains(f.requests(), "DELETE /channels/"+id), id)
	}
}
