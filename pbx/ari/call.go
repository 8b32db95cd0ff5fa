package ari

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/pbx/dialplan"
	"github.com/crmlink/crmlink/routing"
)

// legPrefix starts the id of every channel the controller originates to a manager phone,
// bridgePrefix the id of every bridge it creates.
const (
	legPrefix    = "crmlink-leg-"
	bridgePrefix = "crmlink-br-"
)

// dispatch reads the websocket's events as fast as it can: nothing here blocks (the
// reader waits when eventBuffer is full, and Asterisk buffers behind it). New calls start
// their own goroutine; events of calls in progress go to that call's mailbox.
func (c *Controller) dispatch(ctx context.Context, stop <-chan struct{}, events <-chan ari.Event, log zerolog.Logger) {
	for {
		select {
		case <-stop:
			return
		case e, ok := <-events:
			if !ok {
				return
			}
			if ss, isStart := e.(*ari.StasisStart); isStart {
				if !isLeg(ss.Args) {
					c.start(ctx, ss.Channel, isOutgoing(ss.Args), log)
					continue
				}
				if _, owned := c.calls.Load(ss.Channel.ID); !owned {
					// A manager answered a leg no call rings any more (its originate
					// timed out and the call went on to the fallback, or the call is
					// over): nobody would ever hang it up.
					c.endOrphanLeg(ctx, ss.Channel.ID, "answered after its call stopped ringing", log)
					continue
				}
			}
			for _, id := range channelIDs(e) {
				if v, found := c.calls.Load(id); found {
					v.(*call).deliver(e)
				}
			}
		}
	}
}

// start claims an incoming channel and handles it on its own goroutine; a channel already
// claimed (by the reconciler or an earlier StasisStart) is left alone.
func (c *Controller) start(ctx context.Context, ch ari.ChannelData, outgoing bool, log zerolog.Logger) {
	k := newCall(c, ch, log)
	if _, loaded := c.calls.LoadOrStore(ch.ID, k); loaded {
		return
	}
	c.active.Add(1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.active.Add(-1)
		defer k.forget()
		k.run(ctx, outgoing)
	}()
}

// call is one incoming channel and the legs it rings.
type call struct {
	c      *Controller
	ch     ari.ChannelData
	log    zerolog.Logger
	events chan ari.Event
	// probes carries the reconciler's channel lists, to end the call when its channels
	// are gone although their StasisEnd or ChannelDestroyed never arrived.
	probes chan channelSet
	legs   map[string]string // leg channel id -> endpoint
	start  time.Time
	info   routing.Call
	// settled is set once the call's final routing was reported (settle).
	settled bool
}

// channelSet is which channels Asterisk had when it was asked at at.
type channelSet struct {
	at  time.Time
	ids map[string]bool
}

// gone reports whether a channel that existed since before the list was asked for is no
// longer there.
func (s channelSet) gone(id string, since time.Time) bool { return since.Before(s.at) && !s.ids[id] }

func newCall(c *Controller, ch ari.ChannelData, log zerolog.Logger) *call {
	caller := ""
	if ch.Caller != nil {
		caller = ch.Caller.Number
	}
	return &call{
		c:   c,
		ch:  ch,
		log: log.With().Str("channel", ch.ID).Str("linkedid", ch.ID).Str("caller", caller).Logger(),
		// Big enough for every event of a call with several legs; deliver never blocks.
		events: make(chan ari.Event, 256),
		probes: make(chan channelSet, 1),
		legs:   map[string]string{},
		start:  time.Now(),
	}
}

// deliver hands an event to the call without ever blocking the dispatcher.
func (k *call) deliver(e ari.Event) {
	select {
	case k.events <- e:
	default:
		k.log.Error().Str("event", e.GetType()).Msg("call mailbox full; event dropped")
	}
}

// probe hands the call the reconciler's channel list without ever blocking; a list the
// call has not read yet is replaced by the newer one.
func (k *call) probe(s channelSet) {
	for {
		select {
		case k.probes <- s:
			return
		default:
		}
		select {
		case <-k.probes:
		default:
		}
	}
}

func (k *call) forget() {
	k.c.opts.Board.Ended(k.ch.ID)
	k.c.calls.Delete(k.ch.ID)
	k.releaseLegs()
}

// releaseLegs stops routing the legs' events to the call.
func (k *call) releaseLegs() {
	for id := range k.legs {
		k.c.calls.Delete(id)
	}
}

func (k *call) callInfo() routing.Call {
	rc := routing.Call{ChannelID: k.ch.ID, LinkedID: k.ch.ID, Asterisk: k.c.asterisk}
	if k.ch.Caller != nil {
		rc.Caller = k.ch.Caller.Number
	}
	if k.ch.Dialplan != nil {
		rc.Called = k.ch.Dialplan.Exten
	}
	return rc
}

func (k *call) run(ctx context.Context, outgoing bool) {
	if outgoing {
		k.runOutgoing(ctx)
		return
	}
	info := k.callInfo()
	k.info = info
	out := routing.CallOutcome{ID: info.LinkedID, Asterisk: k.c.asterisk, Direction: routing.Incoming, Caller: info.Caller, Called: info.Called, Start: k.start}

	var d routing.Decision
	if k.c.draining.Load() {
		// crmlink is stopping: do not start ringing what may outlive it.
		d = routing.FallbackDecision(routing.ReasonDisabled)
	} else {
		d = k.decide(ctx, info)
	}
	if d.Result == routing.Routed && len(d.Targets) == 0 {
		d = routing.Decision{Result: routing.Fallback, Reason: routing.ReasonNoOwner, Owner: d.Owner, Source: d.Source, Latency: d.Latency}
	}
	log := k.decisionLog(d)
	k.showRinging(&out, d, targetEndpoints(d)...)
	if d.Result == routing.Routed {
		out.FirstOperator = d.Owner
		if k.c.opts.Ringing == RingDialplan && !k.c.noDialContext.Load() && k.ringInDialplan(ctx, d, out, log) {
			return
		}
		ringStart := time.Now()
		r := k.ring(ctx, d, log)
		// Ringing is over: a leg that still enters the application now (one whose
		// originate timed out but went through) is nobody's, and the dispatcher or the
		// reconciler hangs it up.
		k.releaseLegs()
		if r.endpoint != "" || r.ended {
			k.settle(d) // the owner answered, or the caller gave up while it rang
		}
		if r.endpoint != "" {
			out.Decision = d
			out.Answered, out.AnsweredBy = true, d.Owner
			out.RingDuration = r.answeredAt.Sub(ringStart)
			out.TalkDuration = time.Since(r.answeredAt)
			k.emit(out)
			return
		}
		out.RingDuration = time.Since(ringStart)
		if r.ended {
			// The caller gave up while the owner's phones rang: a missed call.
			out.Decision = d
			k.emit(out)
			return
		}
		if r.unreachable {
			d.Result, d.Reason = routing.Fallback, routing.ReasonOwnerUnavailable
			log = k.decisionLog(d)
			log.Info().Msg("owner's phones are not reachable; call to fallback as owner_unavailable")
		} else {
			d.Result, d.Reason = routing.Fallback, routing.ReasonOwnerNoAnswer
			log = k.decisionLog(d)
			log.Info().Msg("owner did not answer; call to fallback")
		}
	} else {
		log.Info().Msg("call to fallback")
	}
	k.settle(d)
	out.Decision = d
	k.follow(ctx, func() error { return k.fallback(ctx, d) }, &out, nil)
}

// decisionLog is the call's logger with the routing it has now.
func (k *call) decisionLog(d routing.Decision) zerolog.Logger {
	return k.log.With().Str("result", string(d.Result)).Str("reason", string(d.Reason)).
		Int64("owner", int64(d.Owner)).Str("source", string(d.Source)).Dur("lookup", d.Latency).Logger()
}

// settle reports the routing the call got in the end, once.
func (k *call) settle(d routing.Decision) {
	if k.settled {
		return
	}
	k.settled = true
	if k.c.opts.OnDecision != nil {
		k.c.opts.OnDecision(k.info, d)
	}
}

// runOutgoing sends a call placed by an office phone on to the outgoing context and
// follows it to learn whether the client answered.
func (k *call) runOutgoing(ctx context.Context) {
	out := routing.CallOutcome{ID: k.ch.ID, Asterisk: k.c.asterisk, Direction: routing.Outgoing, Start: k.start}
	if k.ch.Dialplan != nil {
		out.Called = k.ch.Dialplan.Exten
	}
	out.Manager = k.c.userOf(endpointOfChannel(k.ch.Name))
	if k.ch.Caller != nil {
		out.Caller = k.ch.Caller.Number
	}
	k.follow(ctx, func() error {
		return k.c.rest.continueIn(ctx, k.ch.ID, k.c.opts.OutgoingContext, out.Called, 1)
	}, &out, nil)
}

// emit hands a finished call to the event path.
func (k *call) emit(out routing.CallOutcome) {
	k.log.Info().Str("direction", string(out.Direction)).Bool("answered", out.Answered).
		Int64("answered_by", int64(out.AnsweredBy)).Dur("ring", out.RingDuration).Dur("talk", out.TalkDuration).
		Msg("call ended")
	if k.c.opts.OnOutcome != nil {
		k.c.opts.OnOutcome(out)
	}
}

// decide asks the router, with a safety margin over the lookup timeout in case a Decider
// overruns it: the caller must never wait on crmlink longer than configured.
func (k *call) decide(ctx context.Context, info routing.Call) routing.Decision {
	ctx, cancel := context.WithTimeout(ctx, k.c.opts.LookupTimeout+50*time.Millisecond)
	defer cancel()
	return routing.DecideWithin(ctx, k.c.opts.Decider, info, k.log)
}

// fallback records the decision on the channel and sends it to the fallback context.
func (k *call) fallback(ctx context.Context, d routing.Decision) error {
	k.setResult(ctx, d)
	ext := k.c.opts.FallbackExtension
	if ext == "" {
		ext = k.exten()
	}
	var err error
	for attempt := 0; ; attempt++ {
		err = k.c.rest.continueIn(ctx, k.ch.ID, k.c.opts.FallbackContext, ext, k.c.opts.FallbackPriority)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errNotInStasis):
			// An earlier attempt went through and only its answer was lost.
			return nil
		case isGone(err) || ctx.Err() != nil:
			// The caller hung up meanwhile, or crmlink is stopping.
			return err
		case attempt < len(fallbackRetries):
			k.log.Warn().Err(err).Int("attempt", attempt+1).Msg("continue to fallback failed; retrying")
			select {
			case <-time.After(fallbackRetries[attempt]):
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		break
	}
	// Asterisk did not take the caller back in time: rather than leave them in silence in
	// the application, end the call (their phone shows it ended; they can call again).
	k.log.Error().Err(err).Msg("cannot send the caller to the fallback; hanging up")
	if herr := k.c.rest.hangup(cleanup(ctx), k.ch.ID, "normal"); herr != nil && !isGone(herr) {
		k.log.Error().Err(herr).Msg("hang up after the failed fallback")
	}
	return fmt.Errorf("%w: %w", errGaveUp, err)
}

// exten is the number the caller dialled ("s" when there is none).
func (k *call) exten() string {
	if k.ch.Dialplan != nil && k.ch.Dialplan.Exten != "" {
		return k.ch.Dialplan.Exten
	}
	return "s"
}

// fallbackRetries are the waits before the second and third attempt to send a caller to
// the fallback: a busy Asterisk gets a second and a half in all.
var fallbackRetries = []time.Duration{250 * time.Millisecond, time.Second}

// errGaveUp: crmlink could not send the caller on and hung the call up; the call is over.
var errGaveUp = errors.New("gave up sending the caller to the fallback")

// setResult writes the CRMLINK_* variables (and the CDR userfield) the dialplan and the
// reports read, in one request.
func (k *call) setResult(ctx context.Context, d routing.Decision) {
	v := dialplan.Of(d)
	for _, p := range v.Problems {
		k.log.Error().Msg("ARI: decision data rejected: " + p)
	}
	var vars []channelVar
	for _, cv := range v.ChannelVars() {
		vars = append(vars, channelVar{cv.Name, cv.Value})
	}
	if err := k.c.rest.setVariables(ctx, k.ch.ID, vars); err != nil {
		k.log.Warn().Err(err).Msg("set channel variables")
	}
}

// cleanup is the context of requests that tidy up (hang up legs, delete a bridge): they
// are sent even when crmlink is stopping and ctx is over, each under the REST timeout.
func cleanup(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// isGone reports an ARI error that means the channel or bridge no longer exists.
func isGone(err error) bool { return errors.Is(err, errNotFound) }

func newLegID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return legPrefix + hex.EncodeToString(b[:])
}
