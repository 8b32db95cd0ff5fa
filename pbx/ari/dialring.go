package ari

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/pbx/dialplan"
	"github.com/crmlink/crmlink/routing"
)

// Who rings the owner's phones (asterisk.ari.ringing).
const (
	// RingBridge: the controller originates a leg to every phone and bridges the first
	// to answer with the caller.
	RingBridge = "bridge"
	// RingDialplan: the controller writes the decision and the dial string to the channel
	// in one request and continues the call in DialContext, whose Dial() rings the phones
	// as in the FastAGI wiring; the controller follows the call to learn who answered.
	RingDialplan = "dialplan"
	// DefaultDialContext is RingDialplan's context in asterisk-conf/extensions.conf.
	DefaultDialContext = "crmlink-dial"
	// DialLabel labels the dial context's first priority: the controller continues there
	// by label, so that Asterisk refuses the continue when the context is missing.
	DialLabel = "dial"
)

// errNoDialContext: Asterisk has no DialLabel in the dial context (a dialplan from before
// RingDialplan): the call is still in the application and rings the bridge way.
var errNoDialContext = errors.New("the dial context has no priority labelled " + DialLabel)

// Ringings lists the values asterisk.ari.ringing takes.
var Ringings = []string{RingBridge, RingDialplan}

// fallbackUserEvent is the UserEvent the dial context raises when the owner's phones did
// not answer, just before it goes to the fallback: UserEvent(crmlink-fallback,reason: R)
// with R owner_no_answer or owner_unavailable.
const fallbackUserEvent = "crmlink-fallback"

// dialRing is what a call rung by the dialplan's Dial() needs while it is followed.
type dialRing struct {
	d       routing.Decision
	targets []string
	// over: the dial context gave up on the owner and the call went to the fallback.
	over bool
}

// ringInDialplan sends a routed call to DialContext with CRMLINK_DIAL and
// CRMLINK_RING_TIMEOUT set (one request with the decision's variables) and follows it. It
// returns false, with the call untouched in the application, when the dialplan has no dial
// context: the caller then rings the bridge way, as every call after it.
func (k *call) ringInDialplan(ctx context.Context, d routing.Decision, out routing.CallOutcome, log zerolog.Logger) bool {
	v := dialplan.ForDial(d, k.c.opts.RingTimeout)
	for _, p := range v.Problems {
		log.Error().Msg("ARI: decision data rejected: " + p)
	}
	if v.Result != string(routing.Routed) {
		d = routing.Decision{Result: routing.Fallback, Reason: routing.ReasonNoOwner, Owner: d.Owner, Source: d.Source, Latency: d.Latency}
		k.settle(d)
		out.Decision = d
		k.follow(ctx, func() error { return k.fallback(ctx, d) }, &out, nil)
		return true
	}
	var vars []channelVar
	for _, cv := range append(v.ChannelVars(), dialplan.Var{Name: dialplan.VarDial, Value: v.Dial}, dialplan.Var{Name: dialplan.VarRingTimeout, Value: v.RingTimeout}) {
		vars = append(vars, channelVar{cv.Name, cv.Value})
	}
	out.Decision = d
	r := &dialRing{d: d, targets: strings.Split(v.Dial, "&")}
	missing := false
	k.follow(ctx, func() error {
		// Both begun before either is awaited: over the websocket Asterisk sets the
		// variables, then continues, in one round trip. Over HTTP the variables are set
		// before the continue leaves. Should the variables be lost all the same, the dial
		// context finds CRMLINK_DIAL empty and falls back.
		ringAt := time.Now()
		varsSet := k.c.rest.beginSetVariables(ctx, k.ch.ID, vars)
		continued := k.c.rest.beginContinueAtLabel(ctx, k.ch.ID, k.c.opts.DialContext, k.exten(), DialLabel)
		if err := varsSet(); err != nil {
			log.Warn().Err(err).Msg("set the dial variables")
		}
		err := continued()
		var re *requestError
		if errors.As(err, &re) && re.status == http.StatusNotFound && strings.Contains(strings.ToLower(re.message), "label") {
			missing = true
			return errNoDialContext
		}
		if err == nil {
			log.Info().Int("phones", len(r.targets)).Msg("owner rung by the dialplan")
			k.showCard(d.Owner, ringAt)
		}
		return err
	}, &out, r)
	if missing && !k.c.noDialContext.Swap(true) {
		log.Error().Str("dial_context", k.c.opts.DialContext).Msg("asterisk.ari.ringing is dialplan, but the dialplan has no " +
			k.c.opts.DialContext + " context with priority 1 labelled (" + DialLabel + ") for this number: crmlink rings the owner's phones itself (ringing bridge) until it restarts; add the context (asterisk-conf/extensions.conf, [crmlink-dial])")
	}
	return !missing
}

// dialed notes a Dial event of a call the dialplan rings: the owner's answer settles it.
func (r *dialRing) dialed(k *call, v *ari.Dial) {
	if !r.over && v.Dialstatus == "ANSWER" {
		k.settle(r.d)
	}
}

// userEvent notes the dial context's word that the owner did not answer: the call went
// on to the fallback with that reason.
func (r *dialRing) userEvent(k *call, v *ari.ChannelUserevent, out *routing.CallOutcome) {
	if r.over || v.Eventname != fallbackUserEvent {
		return
	}
	reason := routing.ReasonOwnerNoAnswer
	if m, ok := v.Userevent.(map[string]any); ok && m["reason"] == string(routing.ReasonOwnerUnavailable) {
		reason = routing.ReasonOwnerUnavailable
		for _, t := range r.targets {
			k.c.presence.markOffline(t)
		}
	}
	d := r.d
	d.Result, d.Reason = routing.Fallback, reason
	r.over = true
	out.Decision = d
	log := k.decisionLog(d)
	log.Info().Msg("owner did not answer in the dialplan; call to fallback")
	k.settle(d)
}
