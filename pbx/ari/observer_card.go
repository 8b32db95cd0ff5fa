package ari

import (
	"strings"
	"time"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/pbx/dialplan"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/routing/callcard"
)

// ringing tells whether an event starts ringing a mapped manager's phone for a client's
// incoming call, and for whom: the incoming-call card of that phone. The call must be one
// the tracker follows (its caller channel seen); legs the Stasis controller originated are
// the controller's to report.
func (t *tracker) ringing(e obsEvent) (callcard.Ring, bool) {
	if e.Type != "Dial" || e.Dialstatus != "" || e.Caller == nil || e.Peer == nil || strings.HasPrefix(e.Peer.ID, legPrefix) {
		return callcard.Ring{}, false
	}
	user := t.managers[endpointOfChannel(e.Peer.Name)]
	id, known := t.byChannel[e.Caller.ID]
	k := t.calls[id]
	if user == 0 || !known || k == nil {
		return callcard.Ring{}, false
	}
	if t.isOffice(endpointOfChannel(k.first.Name)) || routing.Withheld(k.first.Caller.Number) {
		return callcard.Ring{}, false // an outgoing or internal call, or no number to show
	}
	if v := e.Caller.Vars; v[stasisStatusVar] != "" && v[dialplan.VarResult] == string(routing.Routed) {
		// The Stasis controller routed the call and the dial context rings the owner
		// (asterisk.ari.ringing: dialplan): the controller shows that card itself. Its
		// fallback (CRMLINK_RESULT FALLBACK) rings phones only the observer sees.
		return callcard.Ring{}, false
	}
	// Received now: the card's freshness counts from when crmlink learnt of the ring.
	return callcard.Ring{Call: id, Caller: k.first.Caller.Number, Users: []crm.UserID{user}, At: time.Now()}, true
}
