package ari

import (
	"strconv"
	"strings"
	"time"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/pbx/dialplan"
	"github.com/crmlink/crmlink/routing"
)

// linkedIDVar is the channel variable (ari.conf channelvars) that names the call a channel
// belongs to: every channel of one call, whatever the wiring, shares its linkedid.
const linkedIDVar = "CHANNEL(linkedid)"

// keptVars are the channel variables (ari.conf channelvars) a call's outcome reads when
// it ends: the routing FastAGI or the dialplan left in CRMLINK_*, and STASISSTATUS, which
// Stasis() sets when a Stasis application took the channel (the controller reports such
// a call itself).
var keptVars = []string{dialplan.VarResult, dialplan.VarReason, dialplan.VarOwner, dialplan.VarSource, stasisStatusVar}

const stasisStatusVar = "STASISSTATUS"

// ObservedEvents are the event types the observer's application lets through (its event
// filter): Asterisk sends a call's ChannelVarset, ChannelDialplan, bridge and device-state
// events too, ten times as many, and the observer needs none of them.
var ObservedEvents = []string{"ChannelCreated", "Dial", "ChannelDestroyed"}

// obsEvent is the part of an ARI event the observer reads; everything else in the JSON is
// skipped by the decoder.
type obsEvent struct {
	Type       string      `json:"type"`
	Timestamp  string      `json:"timestamp"`
	Channel    *obsChannel `json:"channel"`
	Caller     *obsChannel `json:"caller"`
	Peer       *obsChannel `json:"peer"`
	Dialstatus string      `json:"dialstatus"`
	Dialstring string      `json:"dialstring"`
}

type obsChannel struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Caller struct {
		Number string `json:"number"`
	} `json:"caller"`
	Dialplan struct {
		Exten string `json:"exten"`
	} `json:"dialplan"`
	Vars map[string]string `json:"channelvars"`
}

// asteriskTime is how ARI writes timestamps.
const asteriskTime = "2006-01-02T15:04:05.000-0700"

// tracker turns the channel events of every call on the Asterisk into call outcomes: one
// per finished client call, none for internal calls, calls with a withheld number, and
// calls crmlink's Stasis controller handled (it reports those itself).
type tracker struct {
	managers map[string]crm.UserID
	office   map[string]bool // endpoints that are not clients' lines besides the managers'
	calls    map[string]*observedCall
	// byChannel maps every live channel to its call's linkedid.
	byChannel map[string]string
}

// observedCall is one call (one linkedid) while its channels live.
type observedCall struct {
	id     string
	first  obsChannel // the channel that started the call, as first seen
	start  time.Time
	live   int
	vars   map[string]string // keptVars: the last non-empty value any channel had
	stasis bool              // a channel of the Stasis controller took part
	rings  []ring
}

// ring is one phone or line the call dialled.
type ring struct {
	channel, endpoint, dialstring string
	start, answered, ended        time.Time
}

func newTracker(managers map[string]crm.UserID, office []string) *tracker {
	t := &tracker{managers: managers, office: map[string]bool{}, calls: map[string]*observedCall{}, byChannel: map[string]string{}}
	for _, e := range office {
		t.office[e] = true
	}
	return t
}

// isOffice reports whether an endpoint is an office phone rather than a client's line.
func (t *tracker) isOffice(endpoint string) bool {
	_, manager := t.managers[endpoint]
	return manager || t.office[endpoint]
}

// feed takes one event; it returns the outcome of the call it ended, if it ended a
// client call.
func (t *tracker) feed(e obsEvent) (routing.CallOutcome, bool) {
	at, err := time.Parse(asteriskTime, e.Timestamp)
	if err != nil {
		at = time.Now()
	}
	switch e.Type {
	case "ChannelCreated":
		if e.Channel == nil {
			return routing.CallOutcome{}, false
		}
		t.created(*e.Channel, at)
	case "Dial":
		if e.Caller == nil || e.Peer == nil {
			return routing.CallOutcome{}, false
		}
		t.dial(e, at)
	case "ChannelDestroyed":
		if e.Channel == nil {
			return routing.CallOutcome{}, false
		}
		return t.destroyed(*e.Channel, at)
	}
	return routing.CallOutcome{}, false
}

func (t *tracker) created(ch obsChannel, at time.Time) {
	id := ch.Vars[linkedIDVar]
	if id == "" {
		// ari.conf has no channelvars with the linkedid: a channel is its own call.
		id = ch.ID
	}
	k := t.calls[id]
	if k == nil {
		k = &observedCall{id: id, first: ch, start: at, vars: map[string]string{}}
		t.calls[id] = k
	}
	k.live++
	t.byChannel[ch.ID] = id
	k.note(ch)
}

// note keeps what a channel's snapshot says about the call.
func (k *observedCall) note(ch obsChannel) {
	if strings.HasPrefix(ch.ID, legPrefix) {
		k.stasis = true
	}
	for _, v := range keptVars {
		if s := ch.Vars[v]; s != "" {
			k.vars[v] = s
		}
	}
}

func (t *tracker) dial(e obsEvent, at time.Time) {
	k := t.calls[t.byChannel[e.Caller.ID]]
	if k == nil {
		return
	}
	k.note(*e.Caller)
	r := k.ringOf(e.Peer.ID)
	switch {
	case r == nil && e.Dialstatus == "":
		k.rings = append(k.rings, ring{channel: e.Peer.ID, endpoint: endpointOfChannel(e.Peer.Name), dialstring: e.Dialstring, start: at})
	case r != nil && e.Dialstatus == "ANSWER" && r.answered.IsZero():
		r.answered = at
	}
}

func (k *observedCall) ringOf(channel string) *ring {
	for i := range k.rings {
		if k.rings[i].channel == channel {
			return &k.rings[i]
		}
	}
	return nil
}

func (t *tracker) destroyed(ch obsChannel, at time.Time) (routing.CallOutcome, bool) {
	id, known := t.byChannel[ch.ID]
	if !known {
		return routing.CallOutcome{}, false // created before the observer connected
	}
	delete(t.byChannel, ch.ID)
	k := t.calls[id]
	k.note(ch)
	if r := k.ringOf(ch.ID); r != nil {
		r.ended = at
	}
	if k.live--; k.live > 0 {
		return routing.CallOutcome{}, false
	}
	delete(t.calls, id)
	return t.outcome(k, at)
}

// forgetGone drops the calls none of whose channels Asterisk still has (they ended while
// the websocket was down: their end, and so their outcome, is unknown) and returns how
// many it dropped.
func (t *tracker) forgetGone(live map[string]bool) int {
	gone := 0
	for ch, id := range t.byChannel {
		if !live[ch] {
			delete(t.byChannel, ch)
			if k := t.calls[id]; k != nil {
				k.live--
			}
		}
	}
	for id, k := range t.calls {
		if k.live <= 0 {
			delete(t.calls, id)
			gone++
		}
	}
	return gone
}

// outcome is what a finished call tells the rules engine; false when it is no client call
// or the Stasis controller reports it.
func (t *tracker) outcome(k *observedCall, end time.Time) (routing.CallOutcome, bool) {
	if k.stasis || k.vars[stasisStatusVar] == "SUCCESS" {
		return routing.CallOutcome{}, false
	}
	o := routing.CallOutcome{ID: k.id, Start: k.start}
	from := endpointOfChannel(k.first.Name)
	var client []ring // the rings that reached a client's line (outgoing)
	if t.isOffice(from) {
		for _, r := range k.rings {
			if !t.isOffice(r.endpoint) && !isLocal(r.endpoint) {
				client = append(client, r)
			}
		}
		if len(client) == 0 {
			return routing.CallOutcome{}, false // internal call
		}
		o.Direction, o.Manager, o.Caller = routing.Outgoing, t.managers[from], k.first.Caller.Number
		o.Called = outsideNumber(client[0])
		t.talk(&o, client, end)
		return o, o.Called != ""
	}
	if routing.Withheld(k.first.Caller.Number) {
		return routing.CallOutcome{}, false
	}
	o.Direction, o.Caller, o.Called = routing.Incoming, k.first.Caller.Number, k.first.Dialplan.Exten
	var phones []ring
	for _, r := range k.rings {
		if !isLocal(r.endpoint) {
			phones = append(phones, r)
		}
	}
	for _, r := range phones {
		if u := t.managers[r.endpoint]; u != 0 {
			o.FirstOperator = u
			break
		}
	}
	t.talk(&o, phones, end)
	o.Decision = decisionOf(k.vars)
	return o, true
}

// talk fills in who answered and the ring and talk times from the rings of the call:
// ringing from the first ring to the first answer (or the end), talking while answered
// phones were on the line. The last manager who answered is credited.
func (t *tracker) talk(o *routing.CallOutcome, rings []ring, end time.Time) {
	if len(rings) == 0 {
		return
	}
	firstRing, firstAnswer := rings[0].start, time.Time{}
	for _, r := range rings {
		if r.start.Before(firstRing) {
			firstRing = r.start
		}
		if r.answered.IsZero() {
			continue
		}
		o.Answered = true
		if firstAnswer.IsZero() || r.answered.Before(firstAnswer) {
			firstAnswer = r.answered
		}
		hung := r.ended
		if hung.IsZero() {
			hung = end
		}
		o.TalkDuration += hung.Sub(r.answered)
		if u := t.managers[r.endpoint]; u != 0 && o.Direction == routing.Incoming {
			o.AnsweredBy = u
		}
	}
	if firstAnswer.IsZero() {
		firstAnswer = end
	}
	o.RingDuration = firstAnswer.Sub(firstRing)
}

// decisionOf reads the routing FastAGI or the dialplan left on the call's channels.
func decisionOf(vars map[string]string) routing.Decision {
	d := routing.Decision{
		Result: routing.Result(vars[dialplan.VarResult]),
		Reason: routing.Reason(vars[dialplan.VarReason]),
		Source: routing.Source(vars[dialplan.VarSource]),
	}
	if n, err := strconv.ParseInt(vars[dialplan.VarOwner], 10, 64); err == nil {
		d.Owner = crm.UserID(n)
	}
	return d
}

// outsideNumber is the number an outgoing call dialled: the user part of the dial string
// ("89161234567@trunk"), else the channel's endpoint resource.
func outsideNumber(r ring) string {
	if n, _, _ := strings.Cut(r.dialstring, "@"); n != "" && !strings.Contains(n, "/") {
		return n
	}
	return ""
}

// isLocal reports a Local channel: a hop inside the dialplan, not a phone.
func isLocal(endpoint string) bool { return strings.HasPrefix(endpoint, "Local/") }
