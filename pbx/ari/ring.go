package ari

import (
	"context"
	"fmt"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/routing"
)

// ringResult is how ringing the owner ended.
type ringResult struct {
	endpoint   string    // the phone that answered; empty when none did
	answeredAt time.Time // when it answered
	// ended: the call is over (the caller hung up, or a bridged call ended), so there is
	// nothing to fall back to.
	ended bool
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
	_ = k.bounded(ctx, func() error { return k.c.client.Channel().Ring(k.key) })
	timeout := int(k.c.opts.RingTimeout / time.Second)
	pending := map[string]bool{}
	for id, ep := range k.legs {
		err := k.bounded(ctx, func() error {
			_, err := k.c.client.Channel().Originate(nil, ari.OriginateRequest{
				Endpoint:   ep,
				App:        k.c.opts.Application,
				AppArgs:    legArg,
				Timeout:    timeout,
				CallerID:   callerID,
				ChannelID:  id,
				Originator: k.ch.ID,
			})
			return err
		})
		if err != nil {
			log.Warn().Err(err).Str("endpoint", ep).Msg("originate to manager phone failed")
			continue
		}
		pending[id] = true
	}
	if len(pending) == 0 {
		return ringResult{}
	}
	log.Info().Int("legs", len(pending)).Msg("ringing owner")

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
			case *ari.StasisEnd, *ari.ChannelDestroyed:
				// A channel in the application reports its hangup with StasisEnd (and
				// no ChannelDestroyed follows); a leg that never answered only with
				// ChannelDestroyed. Either means that channel is gone.
				id, cause, causeTxt := goneChannel(v)
				log.Debug().Str("event", v.GetType()).Str("gone", id).Int("cause", cause).Msg("channel gone")
				if id == k.ch.ID {
					// The caller hung up: while ringing, the legs stop; once bridged,
					// the manager is hung up too.
					hangupOthers("")
					k.deleteBridge(ctx, bridgeID)
					return result(true)
				}
				if !pending[id] {
					continue
				}
				delete(pending, id)
				if id == winner {
					// The manager hung up a bridged call: end the caller's side too.
					k.hangup(ctx, k.ch.ID, "normal")
					k.deleteBridge(ctx, bridgeID)
					return result(true)
				}
				log.Debug().Str("endpoint", k.legs[id]).Int("cause", cause).Str("cause_txt", causeTxt).Msg("leg ended")
				if winner == "" && len(pending) == 0 {
					return ringResult{}
				}
			}
		}
	}
}

// bridge answers the caller and joins it with the manager's leg in a new mixing bridge.
func (k *call) bridge(ctx context.Context, d routing.Decision, leg string) (string, error) {
	k.setResult(ctx, d)
	if err := k.bounded(ctx, func() error { return k.c.client.Channel().Answer(k.key) }); err != nil {
		return "", fmt.Errorf("answer caller: %w", err)
	}
	bridgeID := bridgePrefix + leg[len(legPrefix):]
	k.c.bridges.Store(bridgeID, k)
	err := k.bounded(ctx, func() error {
		br, err := k.c.client.Bridge().Create(ari.NewKey(ari.BridgeKey, bridgeID), "mixing", bridgeID)
		if err != nil {
			return fmt.Errorf("create bridge: %w", err)
		}
		if err := br.AddChannel(k.ch.ID); err != nil {
			return fmt.Errorf("add caller to bridge: %w", err)
		}
		if err := br.AddChannel(leg); err != nil {
			return fmt.Errorf("add manager to bridge: %w", err)
		}
		return nil
	})
	return bridgeID, err
}

func (k *call) hangup(ctx context.Context, id, reason string) {
	err := k.bounded(ctx, func() error {
		return k.c.client.Channel().Hangup(ari.NewKey(ari.ChannelKey, id), reason)
	})
	if err != nil {
		k.log.Debug().Err(err).Str("leg", id).Msg("hangup")
	}
}

func (k *call) deleteBridge(ctx context.Context, id string) {
	if id == "" {
		return
	}
	defer k.c.bridges.Delete(id)
	_ = k.bounded(ctx, func() error { return k.c.client.Bridge().Delete(ari.NewKey(ari.BridgeKey, id)) })
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
