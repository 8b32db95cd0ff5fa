package ari

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/crmlink/crmlink/crm"
)

// TestTrackerRinging: which Dial events start an incoming-call card, and for whom.
func TestTrackerRinging(t *testing.T) {
	managers := map[string]crm.UserID{"PJSIP/101": 1001, "PJSIP/100": 1100}
	trunk := ch("L", "PJSIP/trunk-00000001", "84951000001", "301")
	tests := []struct {
		name   string
		first  *obsChannel
		peer   *obsChannel
		status string
		want   []crm.UserID // nil: no card
	}{
		{name: "a client's call rings a manager", first: trunk, peer: ch("P", "PJSIP/101-00000002", "", "s"), want: []crm.UserID{1001}},
		{name: "the fallback desk, mapped", first: trunk, peer: ch("P", "PJSIP/100-00000002", "", "s"), want: []crm.UserID{1100}},
		{name: "an unmapped phone", first: trunk, peer: ch("P", "PJSIP/105-00000002", "", "s")},
		{name: "the answer of a ring is no new ring", first: trunk, peer: ch("P", "PJSIP/101-00000002", "", "s"), status: "ANSWER"},
		{name: "a leg of the Stasis controller", first: trunk, peer: ch(legPrefix+"x", "PJSIP/101-00000002", "", "s")},
		{name: "a manager calling a colleague", first: ch("L", "PJSIP/100-00000001", "100", "101"), peer: ch("P", "PJSIP/101-00000002", "", "s")},
		{name: "the owner rung by the dialplan after the controller routed the call (its card is the controller's)",
			first: withVars(trunk, map[string]string{"STASISSTATUS": "SUCCESS", "CRMLINK_RESULT": "ROUTED"}), peer: ch("P", "PJSIP/101-00000002", "", "s")},
		{name: "the fallback desk after the controller", first: withVars(trunk, map[string]string{"STASISSTATUS": "SUCCESS", "CRMLINK_RESULT": "FALLBACK"}),
			peer: ch("P", "PJSIP/100-00000002", "", "s"), want: []crm.UserID{1100}},
		{name: "the owner rung after FastAGI routed the call", first: withVars(trunk, map[string]string{"CRMLINK_RESULT": "ROUTED"}),
			peer: ch("P", "PJSIP/101-00000002", "", "s"), want: []crm.UserID{1001}},
		{name: "a withheld number", first: ch("L", "PJSIP/trunk-00000001", "anonymous", "301"), peer: ch("P", "PJSIP/101-00000002", "", "s")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(managers, nil)
			tr.feed(created(0, tt.first))
			tr.feed(created(100, tt.peer))
			e := dialed(100, tt.first, tt.peer, tt.status, "")
			r, ok := tr.ringing(e)
			if tt.want == nil {
				assert.False(t, ok, "no card")
				return
			}
			assert.True(t, ok)
			assert.Equal(t, tt.want, r.Users)
			assert.Equal(t, "L", r.Call, "the call's linkedid gathers its phones into one wave")
			assert.Equal(t, tt.first.Caller.Number, r.Caller)
		})
	}
}

// withVars is c with the channel variables vars (as ari.conf's channelvars report them).
func withVars(c *obsChannel, vars map[string]string) *obsChannel {
	cp := *c
	cp.Vars = vars
	return &cp
}
