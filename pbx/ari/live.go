package ari

import (
	"github.com/crmlink/crmlink/board"
	"github.com/crmlink/crmlink/routing"
)

// noBoard is the board of a controller or observer nobody watches.
type noBoard struct{}

func (noBoard) Ringing(string, board.Ring) {}
func (noBoard) Answered(string, string)    {}
func (noBoard) Ended(string)               {}

// showRinging tells the board the call rings the endpoints (none yet: it is being sent
// on) with the routing it has now.
func (k *call) showRinging(out *routing.CallOutcome, d routing.Decision, endpoints ...string) {
	k.c.opts.Board.Ringing(k.ch.ID, board.Ring{Direction: out.Direction, Caller: out.Caller, Called: out.Called, Decision: d, Endpoints: endpoints})
}

// showDialled tells the board what a Dial of the call after Stasis means: a phone rings
// (status "") or answers. On an outgoing call the manager's own phone is the one shown.
func (k *call) showDialled(out *routing.CallOutcome, peer, status string) {
	if out.Direction == routing.Outgoing {
		peer = endpointOfChannel(k.ch.Name)
	}
	switch status {
	case "":
		k.showRinging(out, out.Decision, peer)
	case "ANSWER":
		k.c.opts.Board.Answered(k.ch.ID, peer)
	}
}

// targetEndpoints are the phones a routed decision rings.
func targetEndpoints(d routing.Decision) []string {
	if d.Result != routing.Routed {
		return nil
	}
	eps := make([]string, len(d.Targets))
	for i, t := range d.Targets {
		eps[i] = t.Endpoint
	}
	return eps
}

// show tells the board what an event changes on the call it belongs to, before the
// tracker takes it: a phone rings or answers (Dial), the call's last channel is gone.
// Internal calls and hops through Local channels are not shown.
func (t *tracker) show(e obsEvent, b board.Calls) {
	switch {
	case e.Type == "Dial" && e.Caller != nil && e.Peer != nil:
		k := t.calls[t.byChannel[e.Caller.ID]]
		peer := endpointOfChannel(e.Peer.Name)
		if k == nil || isLocal(peer) {
			return
		}
		from := endpointOfChannel(k.first.Name)
		r := board.Ring{Direction: routing.Incoming, Caller: k.first.Caller.Number, Called: k.first.Dialplan.Exten, Endpoints: []string{peer}}
		if t.isOffice(from) {
			if t.isOffice(peer) {
				return
			}
			// A manager calling out: their phone is the one on the call.
			r = board.Ring{Direction: routing.Outgoing, Caller: k.first.Caller.Number, Called: outsideNumber(ring{dialstring: e.Dialstring}), Endpoints: []string{from}}
			peer = from
		}
		switch e.Dialstatus {
		case "":
			vars := map[string]string{}
			for _, v := range keptVars {
				vars[v] = cmpOr(e.Caller.Vars[v], k.vars[v])
			}
			r.Decision = decisionOf(vars)
			b.Ringing(k.id, r)
		case "ANSWER":
			b.Answered(k.id, peer)
		}
	case e.Type == "ChannelDestroyed" && e.Channel != nil:
		if id, known := t.byChannel[e.Channel.ID]; known && t.calls[id] != nil && t.calls[id].live == 1 {
			b.Ended(id)
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
