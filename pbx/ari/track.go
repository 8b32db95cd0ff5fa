package ari

import (
	"slices"
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
//
// ChannelConnectedLine is how an attended transfer shows on a channel subscription: the
// transfer target's channel (dialled in the manager's consultation call) joins the client's
// call, and Asterisk gives it the client call's linkedid; its next event, a connected-line
// update, carries the new linkedid. BridgeAttendedTransfer says it directly, but it is a
// bridge event, which an application subscribed to "channel:" does not receive (measured on
// Asterisk 22), and subscribing to all bridges costs more events than this one.
//
// ApplicationReplaced comes once, when another websocket (a second crmlink with the same
// asterisk.observer.application) takes the application over: Asterisk then sends this one
// nothing more.
var ObservedEvents = []string{"ChannelCreated", "Dial", "ChannelConnectedLine", "ChannelDestroyed", "ApplicationReplaced"}

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
	ID      string `json:"id"`
	Name    string `json:"name"`
	State   string `json:"state"`
	Created string `json:"creationtime"`
	Caller  struct {
		Number string `json:"number"`
	} `json:"caller"`
	Dialplan struct {
		Exten   string `json:"exten"`
		AppName string `json:"app_name"`
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
	names    map[crm.UserID]string // the managers' names, for the call note
	credit   Credit
	office   map[string]bool // endpoints that are not clients' lines besides the managers'
	calls    map[string]*observedCall
	// skipped is told of each finished call that records nothing, and why (Skip*).
	skipped func(reason string)
	// byChannel maps every live channel to its call's linkedid.
	byChannel map[string]string
	// lastSeq is the highest channel sequence number seen (channelSeq).
	lastSeq int64
}

// channelSeq is the sequence number in an Asterisk channel id ("1796426392.45": 45):
// Asterisk numbers the channels it creates one after the other. 0 for ids Asterisk did not
// make (the controller's "crmlink-leg-...").
func channelSeq(id string) int64 {
	i := strings.LastIndexByte(id, '.')
	if i < 0 {
		return 0
	}
	n, err := strconv.ParseInt(id[i+1:], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// gap counts the channels Asterisk created and destroyed while the observer was away,
// from the holes in the channel numbers between the last one it saw and the highest one
// live now; channels made in the gap after the last live one are not counted, so the
// count never exceeds the truth. The count starts again from the live channels: after an
// Asterisk restart (numbers from 0 again) nothing is counted.
func (t *tracker) gap(live []obsChannel) int64 {
	last := t.lastSeq
	t.lastSeq = 0
	top, inside := int64(0), int64(0)
	for _, ch := range live {
		s := channelSeq(ch.ID)
		t.lastSeq = max(t.lastSeq, s)
		if s > last {
			top = max(top, s)
			inside++
		}
	}
	if last == 0 || top == 0 {
		return 0 // the first connection, or nothing live above the last seen
	}
	return top - last - inside
}

// saw notes a channel's sequence number.
func (t *tracker) saw(id string) {
	if s := channelSeq(id); s > t.lastSeq {
		t.lastSeq = s
	}
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

// ring is one phone or line the call dialled, or one an attended transfer brought in.
type ring struct {
	channel, endpoint, dialstring string
	start, answered, ended        time.Time
}

// Credit says which of the managers who talked on a call the CRM credits it to.
type Credit string

const (
	CreditFirstAnswered Credit = "first_answered" // who took the call first (the queue member, the transferer)
	CreditLastAnswered  Credit = "last_answered"  // who had the client last (the transfer target)
)

// Credits are the allowed values of Credit.
var Credits = []Credit{CreditFirstAnswered, CreditLastAnswered}

func newTracker(managers map[string]crm.UserID, office []string) *tracker {
	t := &tracker{managers: managers, credit: CreditLastAnswered, office: map[string]bool{}, calls: map[string]*observedCall{}, byChannel: map[string]string{}}
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
	if e.Channel != nil && e.Type != "ChannelCreated" {
		if o, done := t.moved(*e.Channel, at); done {
			return o, true
		}
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
	t.saw(ch.ID)
	if _, known := t.byChannel[ch.ID]; known {
		return // listed when the observer connected, and its event came after
	}
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

// moved follows a channel into another call: an attended transfer gave the transfer
// target's channel the client call's linkedid. From then on it talks to the client: a ring
// of that call answered now. The call it left may end with it.
func (t *tracker) moved(ch obsChannel, at time.Time) (routing.CallOutcome, bool) {
	from, known := t.byChannel[ch.ID]
	to := ch.Vars[linkedIDVar]
	if !known || to == "" || to == from {
		return routing.CallOutcome{}, false
	}
	k := t.calls[to]
	if k == nil {
		return routing.CallOutcome{}, false // a call that began before the observer connected
	}
	t.byChannel[ch.ID] = to
	k.live++
	k.rings = append(k.rings, ring{channel: ch.ID, endpoint: endpointOfChannel(ch.Name), start: at, answered: at})
	old := t.calls[from]
	if r := old.ringOf(ch.ID); r != nil {
		r.ended = at
		r.channel = "" // its end in the new call is not the end of this ring
	}
	if old.live--; old.live > 0 {
		return routing.CallOutcome{}, false
	}
	delete(t.calls, from)
	return t.outcome(old, at)
}

// note keeps what a channel's snapshot says about the call.
func (k *observedCall) note(ch obsChannel) {
	if strings.HasPrefix(ch.ID, legPrefix) || ch.Dialplan.AppName == "Stasis" {
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

// Why a call records nothing, besides being internal or the controller's.
const (
	SkipWithheld   = "withheld"   // the caller id is withheld or no number
	SkipUnobserved = "unobserved" // it ended while the observer's websocket was down
)

func (t *tracker) skip(reason string) {
	if t.skipped != nil {
		t.skipped(reason)
	}
}

// seed takes up the calls Asterisk has now that the tracker does not know (crmlink just
// started, or the websocket was down when they began): their channels as they are now.
// Phones already up talk from now on: when they answered is not in the snapshot, and a
// talk time is never invented.
func (t *tracker) seed(live []obsChannel, now time.Time) {
	slices.SortFunc(live, func(a, b obsChannel) int { return strings.Compare(a.Created, b.Created) })
	for _, ch := range live {
		if _, known := t.byChannel[ch.ID]; known {
			continue
		}
		t.saw(ch.ID)
		at, err := time.Parse(asteriskTime, ch.Created)
		if err != nil {
			at = now
		}
		id := ch.Vars[linkedIDVar]
		if k := t.calls[id]; id != "" && k != nil && ch.ID != id {
			// A phone of a call already followed: rung, and talking if it is up.
			r := ring{channel: ch.ID, endpoint: endpointOfChannel(ch.Name), start: at}
			if ch.State == "Up" {
				r.answered = now
			}
			k.rings = append(k.rings, r)
			k.live++
			t.byChannel[ch.ID] = id
			k.note(ch)
			continue
		}
		t.created(ch, at)
	}
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
			t.skip(SkipUnobserved)
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
	if withheld(k.first.Caller.Number) {
		t.skip(SkipWithheld)
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

// withheld reports a caller id that is no number to call back: withheld, or without a
// digit ("John").
func withheld(callerID string) bool {
	return routing.Withheld(callerID) || !strings.ContainsAny(callerID, "0123456789")
}

// talk fills in who answered and the ring and talk times from the rings of the call:
// ringing from the first ring to the first answer (or the end), talking while answered
// phones were on the line. On incoming calls everyone who talked is a Talker, in the order
// they answered, and the manager the Credit names is credited.
func (t *tracker) talk(o *routing.CallOutcome, rings []ring, end time.Time) {
	if len(rings) == 0 {
		return
	}
	firstRing, firstAnswer := rings[0].start, time.Time{}
	var talkers []routing.Talker
	for _, r := range slices.SortedStableFunc(slices.Values(rings), func(a, b ring) int { return a.answered.Compare(b.answered) }) {
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
		if o.Direction == routing.Incoming {
			u := t.managers[r.endpoint]
			talkers = append(talkers, routing.Talker{Endpoint: r.endpoint, User: u, Name: t.names[u], Talk: hung.Sub(r.answered)})
		}
	}
	if firstAnswer.IsZero() {
		firstAnswer = end
	}
	o.RingDuration = firstAnswer.Sub(firstRing)
	o.Talkers = talkers
	for i := range talkers {
		tk := talkers[i]
		if t.credit == CreditLastAnswered {
			tk = talkers[len(talkers)-1-i]
		}
		if tk.User != 0 {
			o.AnsweredBy = tk.User
			break
		}
	}
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
