package ari

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/routing/callcard"
)

// ringResult is how ringing the owner ended.
type ringResult struct {
	endpoint   string    // the phone that answered; empty when none did
	answeredAt time.Time // when it answered
	// ended: the call is over (the caller hung up, or a bridged call ended), so there is
	// nothing to fall back to.
	ended bool
	// unreachable: no phone rang because Asterisk could reach none of them (not
	// registered since the last presence refresh): the owner is unavailable, not silent.
	unreachable bool
}

// ring calls every target at once and bridges the first to answer with the caller, and
// follows a bridged call to its end.
func (k *call) ring(ctx context.Context, d routing.Decision, log zerolog.Logger) ringResult {
	callerID := ""
	if k.ch.Caller != nil {
		callerID = fmt.Sprintf("%q <%s>", k.ch.Caller.Name, k.ch.Caller.Number)
	}
	// Legs are registered before they are originated so no event of theirs is missed.
	for _, t := range d.Targets {
		id := newLegID()
		k.legs[id] = t.Endpoint
		k.c.calls.Store(id, k)
	}
	// The caller hears ringing while the legs are originated.
	ringAt := time.Now()
	rang := make(chan error, 1)
	go func() { rang <- k.c.rest.ring(ctx, k.ch.ID) }()
	pending := map[string]bool{}
	// unreachable counts the legs Asterisk could not place at all; when it covers every
	// target, nobody rang.
	unreachable := 0
	for id, ep := range k.legs {
		err := k.c.rest.originate(ctx, originateRequest{
			Endpoint:   ep,
			App:        k.c.opts.Application,
			AppArgs:    legArg,
			Timeout:    k.c.opts.RingTimeout,
			CallerID:   callerID,
			ChannelID:  id,
			Originator: k.ch.ID,
		})
		if isUnreachable(err) {
			log.Info().Str("endpoint", ep).Msg("manager phone not reachable (not registered)")
			k.c.presence.markOffline(ep)
			unreachable++
			continue
		}
		if err != nil {
			log.Warn().Err(err).Str("endpoint", ep).Msg("originate to manager phone failed")
			continue
		}
		pending[id] = true
	}
	if err := <-rang; err != nil {
		log.Debug().Err(err).Msg("ring indication to the caller")
	}
	if len(pending) == 0 {
		return ringResult{unreachable: unreachable == len(k.legs)}
	}
	log.Info().Int("legs", len(pending)).Msg("ringing owner")
	k.showCard(d.Owner, ringAt)

	// Asterisk gives up on each leg after the same timeout; this timer is the safety net.
	timer := time.NewTimer(k.c.opts.RingTimeout + 2*time.Second)
	defer timer.Stop()
	var winner, bridgeID string
	var answeredAt time.Time
	result := func(ended bool) ringResult {
		return ringResult{endpoint: endpointOf(k.legs, winner), answeredAt: answeredAt, ended: ended}
	}
	hangupOthers := func(keep string) {
		for id := range pending {
			if id != keep {
				k.hangup(ctx, id, "answered_elsewhere")
			}
		}
	}
	// callerGone: while ringing, the legs stop; once bridged, the manager is hung up too.
	callerGone := func() ringResult {
		hangupOthers("")
		k.deleteBridge(ctx, bridgeID)
		return result(true)
	}
	// managerGone: the manager hung up a bridged call: end the caller's side too.
	managerGone := func() ringResult {
		k.hangup(ctx, k.ch.ID, "normal")
		k.deleteBridge(ctx, bridgeID)
		return result(true)
	}
	for {
		select {
		case <-ctx.Done():
			// crmlink is stopping: ringing legs stop, a bridged call stays up in Asterisk.
			hangupOthers(winner)
			return result(true)
		case <-timer.C:
			if winner == "" {
				hangupOthers("")
				return ringResult{}
			}
		case s := <-k.probes:
			// The events that end the call may have been lost (a full buffer, a websocket
			// gap): Asterisk's channel list settles it.
			if s.gone(k.ch.ID, k.start) {
				log.Warn().Msg("caller channel gone without its events; ending the call")
				return callerGone()
			}
			if winner != "" && s.gone(winner, answeredAt) {
				log.Warn().Str("endpoint", k.legs[winner]).Msg("manager channel gone without its events; ending the call")
				delete(pending, winner)
				return managerGone()
			}
		case e := <-k.events:
			switch v := e.(type) {
			case *ari.StasisStart:
				id := v.Channel.ID
				if _, isLeg := k.legs[id]; !isLeg {
					continue
				}
				if winner != "" {
					k.hangup(ctx, id, "answered_elsewhere")
					continue
				}
				winner, answeredAt = id, time.Now()
				// A leg whose originate failed (timed out) may still answer: it is
				// followed like the others from now on.
				pending[id] = true
				timer.Stop()
				hangupOthers(id)
				var err error
				bridgeID, err = k.bridge(ctx, d, id)
				if err != nil {
					log.Error().Err(err).Str("endpoint", k.legs[id]).Msg("bridging caller with manager failed")
					k.hangup(ctx, id, "normal")
					k.deleteBridge(ctx, bridgeID)
					return ringResult{}
				}
				log.Info().Str("endpoint", k.legs[id]).Msg("manager answered; bridged")
				k.c.opts.Board.Answered(k.ch.ID, k.legs[id])
				k.settle(d)
			case *ari.StasisEnd, *ari.ChannelDestroyed:
				// A channel in the application reports its hangup with StasisEnd (and
				// no ChannelDestroyed follows); a leg that never answered only with
				// ChannelDestroyed. Either means that channel is gone.
				id, cause, causeTxt := goneChannel(v)
				log.Debug().Str("event", v.GetType()).Str("gone", id).Int("cause", cause).Msg("channel gone")
				if id == k.ch.ID {
					return callerGone()
				}
				if !pending[id] {
					continue
				}
				delete(pending, id)
				if id == winner {
					return managerGone()
				}
				log.Debug().Str("endpoint", k.legs[id]).Int("cause", cause).Str("cause_txt", causeTxt).Msg("leg ended")
				if cause == causeSubscriberAbsent {
					k.c.presence.markOffline(k.legs[id])
					unreachable++
				}
				if winner == "" && len(pending) == 0 {
					return ringResult{unreachable: unreachable == len(k.legs)}
				}
			}
		}
	}
}

// bridge answers the caller and joins it with the manager's leg in a new mixing bridge:
// the bridge is created while the caller is answered, and both channels join it in one
// request. The bridge id is returned even on failure, for the caller to delete.
func (k *call) bridge(ctx context.Context, d routing.Decision, leg string) (string, error) {
	bridgeID := bridgePrefix + leg[len(legPrefix):]
	k.c.bridges.Store(bridgeID, k)
	created := make(chan error, 1)
	go func() { created <- k.c.rest.createBridge(ctx, bridgeID) }()
	// The variables first: the dialplan and the reports may read them once the caller is
	// answered.
	k.setResult(ctx, d)
	errAnswer := k.c.rest.answer(ctx, k.ch.ID)
	errCreate := <-created
	if errAnswer != nil {
		return bridgeID, fmt.Errorf("answer caller: %w", errAnswer)
	}
	if errCreate != nil {
		return bridgeID, fmt.Errorf("create bridge: %w", errCreate)
	}
	if err := k.c.rest.addChannels(ctx, bridgeID, k.ch.ID, leg); err != nil {
		return bridgeID, fmt.Errorf("add caller and manager to bridge: %w", err)
	}
	return bridgeID, nil
}

func (k *call) hangup(ctx context.Context, id, reason string) {
	if err := k.c.rest.hangup(cleanup(ctx), id, reason); err != nil && !isGone(err) {
		k.log.Debug().Err(err).Str("leg", id).Msg("hangup")
	}
}

func (k *call) deleteBridge(ctx context.Context, id string) {
	if id == "" {
		return
	}
	defer k.c.bridges.Delete(id)
	if err := k.c.rest.deleteBridge(cleanup(ctx), id); err != nil && !isGone(err) {
		k.log.Warn().Err(err).Str("bridge", id).Msg("delete bridge")
	}
}

func endpointOf(legs map[string]string, id string) string {
	if id == "" {
		return ""
	}
	return legs[id]
}

// goneChannel reads which channel a StasisEnd or ChannelDestroyed is about.
func goneChannel(e ari.Event) (id string, cause int, causeTxt string) {
	switch v := e.(type) {
	case *ari.ChannelDestroyed:
		return v.Channel.ID, v.Cause, v.CauseTxt
	case *ari.StasisEnd:
		return v.Channel.ID, 0, "left the application"
	}
	return "", 0, ""
}

// causeSubscriberAbsent is Q.850 cause 20: Asterisk found no reachable contact for the
// endpoint (PJSIP sets it when a registered contact went away or stopped qualifying).
const causeSubscriberAbsent = 20

// isUnreachable tells an originate Asterisk refused because it could not create the
// channel at all (PJSIP: the endpoint has no registered contact) from other failures.
// ARI answers that with 500 and "Allocation failed".
func isUnreachable(err error) bool {
	var re *requestError
	return errors.As(err, &re) && re.status == http.StatusInternalServerError &&
		strings.Contains(strings.ToLower(re.message), "allocation failed")
}

// showCard tells OnRing (the incoming-call card) that the owner's phones ring for this
// call since at, whichever way they are rung.
func (k *call) showCard(owner crm.UserID, at time.Time) {
	if k.c.opts.OnRing != nil && k.ch.Caller != nil {
		k.c.opts.OnRing(callcard.Ring{Call: k.ch.ID, Caller: k.ch.Caller.Number, Users: []crm.UserID{owner}, At: at})
	}
}
