package ari

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/routing"
)

// legPrefix starts the id of every channel the controller originates to a manager phone,
// bridgePrefix the id of every bridge it creates.
const (
	legPrefix    = "crmlink-leg-"
	bridgePrefix = "crmlink-br-"
)

// call is one incoming channel and the legs it rings.
type call struct {
	c      *Controller
	ch     ari.ChannelData
	key    *ari.Key
	log    zerolog.Logger
	events chan ari.Event
	legs   map[string]string // leg channel id -> endpoint
	start  time.Time
}

func newCall(c *Controller, ch ari.ChannelData, log zerolog.Logger) *call {
	caller := ""
	if ch.Caller != nil {
		caller = ch.Caller.Number
	}
	return &call{
		c:   c,
		ch:  ch,
		key: ari.NewKey(ari.ChannelKey, ch.ID),
		log: log.With().Str("channel", ch.ID).Str("linkedid", ch.ID).Str("caller", caller).Logger(),
		// Big enough for every event of a call with several legs; deliver never blocks.
		events: make(chan ari.Event, 256),
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

func (k *call) forget() {
	k.c.calls.Delete(k.ch.ID)
	for id := range k.legs {
		k.c.calls.Delete(id)
	}
}

func (k *call) callInfo() routing.Call {
	rc := routing.Call{ChannelID: k.ch.ID, LinkedID: k.ch.ID}
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
	out := routing.CallOutcome{ID: info.LinkedID, Direction: routing.Incoming, Caller: info.Caller, Called: info.Called, Start: k.start}

	var d routing.Decision
	if k.c.draining.Load() {
		// crmlink is stopping: do not start ringing what may outlive it.
		d = routing.FallbackDecision(routing.ReasonDisabled)
	} else {
		d = k.decide(ctx, info)
	}
	log := k.log.With().Str("result", string(d.Result)).Str("reason", string(d.Reason)).
		Int64("owner", int64(d.Owner)).Str("source", string(d.Source)).Dur("lookup", d.Latency).Logger()
	if d.Result == routing.Routed && len(d.Targets) == 0 {
		d = routing.Decision{Result: routing.Fallback, Reason: routing.ReasonNoOwner, Owner: d.Owner, Source: d.Source}
	}
	if d.Result == routing.Routed {
		out.FirstOperator = d.Owner
		ringStart := time.Now()
		r := k.ring(ctx, d, log)
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
		d.Result, d.Reason = routing.Fallback, routing.ReasonOwnerNoAnswer
		log.Info().Msg("owner did not answer; call to fallback")
	} else {
		log.Info().Msg("call to fallback")
	}
	out.Decision = d
	k.follow(ctx, func() error { return k.fallback(ctx, d) }, &out)
}

// runOutgoing sends a call placed by an office phone on to the outgoing context and
// follows it to learn whether the client answered.
func (k *call) runOutgoing(ctx context.Context) {
	out := routing.CallOutcome{ID: k.ch.ID, Direction: routing.Outgoing, Start: k.start}
	if k.ch.Dialplan != nil {
		out.Called = k.ch.Dialplan.Exten
	}
	out.Manager = k.c.userOf(endpointOfChannel(k.ch.Name))
	if k.ch.Caller != nil {
		out.Caller = k.ch.Caller.Number
	}
	k.follow(ctx, func() error {
		return k.bounded(ctx, func() error {
			return k.c.client.Channel().Continue(k.key, k.c.opts.OutgoingContext, out.Called, 1)
		})
	}, &out)
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
	if ext == "" && k.ch.Dialplan != nil {
		ext = k.ch.Dialplan.Exten
	}
	if ext == "" {
		ext = "s"
	}
	err := k.bounded(ctx, func() error {
		return k.c.client.Channel().Continue(k.key, k.c.opts.FallbackContext, ext, k.c.opts.FallbackPriority)
	})
	if err != nil {
		// The caller hung up meanwhile, or Asterisk is gone: nothing else to do.
		k.log.Warn().Err(err).Msg("continue to fallback failed")
	}
	return err
}

// setResult writes the CRMLINK_* variables (and the CDR userfield) the dialplan and the
// reports read, all at once.
func (k *call) setResult(ctx context.Context, d routing.Decision) {
	owner := ""
	if d.Owner != 0 {
		owner = strconv.FormatInt(int64(d.Owner), 10)
	}
	userfield := "crmlink:" + string(d.Result)
	if d.Reason != "" {
		userfield = "crmlink:" + string(d.Reason)
	}
	vars := [][2]string{
		{"CRMLINK_RESULT", string(d.Result)},
		{"CRMLINK_REASON", string(d.Reason)},
		{"CRMLINK_OWNER", owner},
		{"CRMLINK_SOURCE", string(d.Source)},
		{"CDR(userfield)", userfield},
	}
	errs := make(chan error, len(vars))
	for _, v := range vars {
		go func() {
			errs <- k.bounded(ctx, func() error { return k.c.client.Channel().SetVariable(k.key, v[0], v[1]) })
		}()
	}
	for range vars {
		if err := <-errs; err != nil {
			k.log.Warn().Err(err).Msg("set channel variable")
		}
	}
}

// bounded runs an ARI REST call (the library takes no context) and stops waiting for it
// after the REST timeout or when ctx ends.
func (k *call) bounded(ctx context.Context, f func() error) error {
	return bounded(ctx, k.c.opts.RESTTimeout, f)
}

func bounded(ctx context.Context, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("ARI request: %w", ctx.Err())
	}
}

func newLegID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return legPrefix + hex.EncodeToString(b[:])
}
