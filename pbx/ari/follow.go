package ari

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/CyCoreSystems/ari/v6"

	"github.com/crmlink/crmlink/routing"
)

// follow sends the channel on to the dialplan (send: Continue to the fallback or the
// outgoing context) and keeps watching it there until it hangs up, to learn who answered
// and for how long: the channel has left Stasis, so the application subscribes to it
// explicitly, before sending (over HTTP it waits for the subscription, over the websocket
// Asterisk takes the requests in order), so that no event is missed. Should its ChannelDestroyed be
// lost, the reconciler's channel list ends the wait. ring is set when the dialplan rings
// the owner (RingDialplan): the call's routing is settled from what it sees.
func (k *call) follow(ctx context.Context, send func() error, out *routing.CallOutcome, ring *dialRing) {
	// Begun, not awaited: over the websocket Asterisk takes it before what send sends.
	subscribed := k.c.rest.beginSubscribe(ctx, k.c.opts.Application, "channel:"+k.ch.ID)
	err := send()
	if err := subscribed(); err != nil {
		k.log.Warn().Err(err).Msg("cannot follow the call after it leaves Stasis; its outcome stays unknown")
	}
	if err != nil || ctx.Err() != nil {
		if (isGone(err) || errors.Is(err, errGaveUp)) && ctx.Err() == nil {
			// The caller hung up before it could be sent on, or crmlink hung up a caller
			// Asterisk would not take back: the call is over.
			k.emit(*out)
		}
		return
	}
	firstRing := time.Time{}
	var answeredAt time.Time
	ended := func() {
		if ring != nil {
			k.settle(ring.d) // no-op once settled; else the caller gave up while it rang
		}
		if out.Answered {
			out.TalkDuration = time.Since(answeredAt)
		} else if !firstRing.IsZero() {
			out.RingDuration += time.Since(firstRing)
		}
		k.emit(*out)
	}
	for {
		select {
		case <-ctx.Done():
			// crmlink is stopping; the call goes on without us and its outcome is not
			// reported.
			return
		case s := <-k.probes:
			if s.gone(k.ch.ID, k.start) {
				k.log.Warn().Msg("channel gone without its ChannelDestroyed; ending the call")
				ended()
				return
			}
		case e := <-k.events:
			switch v := e.(type) {
			case *ari.Dial:
				if v.Caller.ID != k.ch.ID {
					continue
				}
				peer := endpointOfChannel(v.Peer.Name)
				k.showDialled(out, peer, v.Dialstatus)
				if v.Dialstatus == "" && firstRing.IsZero() {
					firstRing = time.Now()
					if out.FirstOperator == 0 {
						out.FirstOperator = k.c.userOf(peer)
					}
				}
				if ring != nil {
					ring.dialed(k, v)
				}
				if v.Dialstatus == "ANSWER" && !out.Answered {
					answeredAt = time.Now()
					out.Answered = true
					if out.Direction == routing.Incoming {
						out.AnsweredBy = k.c.userOf(peer)
					}
					if !firstRing.IsZero() {
						out.RingDuration += answeredAt.Sub(firstRing)
					}
				}
			case *ari.ChannelUserevent:
				if ring != nil && v.Channel.ID == k.ch.ID {
					ring.userEvent(k, v, out)
				}
			case *ari.ChannelDestroyed:
				if v.Channel.ID != k.ch.ID {
					continue
				}
				ended()
				return
			}
		}
	}
}

// endpointOfChannel turns a channel name ("PJSIP/101-0000002a") into its endpoint
// ("PJSIP/101").
func endpointOfChannel(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		return name[:i]
	}
	return name
}
