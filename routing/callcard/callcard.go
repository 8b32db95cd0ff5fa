// Package callcard shows the incoming-call card: while a client's call rings managers'
// phones, it asks the CRM to show those managers who is calling, one request per ringing
// wave, sent within a short freshness bound of the ring or dropped (a stale card is worse
// than none) and counted.
package callcard

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/crm"
)

// Notifier shows the card to users (amoCRM: POST /api/v2/events). It must give up rather
// than send after ctx's deadline.
type Notifier interface {
	NotifyCall(ctx context.Context, phone crm.Phone, users []crm.UserID) error
}

// Ring is phones of managers starting to ring for one client's call.
type Ring struct {
	// Call is the call's id (the Asterisk linkedid, or the controller's channel id): the
	// rings of one call within the gather window are one wave.
	Call string
	// Caller is the client's number as the PBX has it (caller id).
	Caller string
	Users  []crm.UserID
	// At is when the phones started ringing; the card is due within Options.Fresh of it.
	At time.Time
}

// Options configure Cards.
type Options struct {
	// Fresh bounds how late after the ring a card may still be sent (default 2 s).
	Fresh time.Duration
	// Gather is how long a wave stays open for more phones of the same call (an observed
	// Dial() reports each phone on its own; default 150 ms).
	Gather time.Duration
	// Region parses caller numbers without a country code (routing.default_region).
	Region string
	Logger zerolog.Logger
}

// Stats are the cards' counters since the start.
type Stats struct {
	Sent, Dropped, Failed int64
}

// Cards sends the cards. Its methods never block the caller (the PBX event loops).
type Cards struct {
	n    Notifier
	opts Options

	mu    sync.Mutex
	waves map[string]*wave

	sent, dropped, failed atomic.Int64
}

type wave struct {
	ring  Ring
	timer *time.Timer
}

// New returns Cards sending through n.
func New(n Notifier, opts Options) *Cards {
	if opts.Fresh <= 0 {
		opts.Fresh = 2 * time.Second
	}
	if opts.Gather <= 0 {
		opts.Gather = 150 * time.Millisecond
	}
	return &Cards{n: n, opts: opts, waves: map[string]*wave{}}
}

// Stats reports what happened to the cards so far.
func (c *Cards) Stats() Stats {
	return Stats{Sent: c.sent.Load(), Dropped: c.dropped.Load(), Failed: c.failed.Load()}
}

// Wave sends one card for a whole ringing wave (the controller rings all of the owner's
// phones at once).
func (c *Cards) Wave(r Ring) {
	if len(r.Users) == 0 {
		return
	}
	go c.send(r)
}

// Ringing adds one phone's ring to its call's wave, which is sent Gather after the wave's
// first ring (the observer sees the phones of one Dial() one event at a time).
func (c *Cards) Ringing(r Ring) {
	if len(r.Users) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.waves[r.Call]; w != nil {
		for _, u := range r.Users {
			if !slices.Contains(w.ring.Users, u) {
				w.ring.Users = append(w.ring.Users, u)
			}
		}
		return
	}
	w := &wave{ring: Ring{Call: r.Call, Caller: r.Caller, Users: slices.Clone(r.Users), At: r.At}}
	c.waves[r.Call] = w
	w.timer = time.AfterFunc(c.opts.Gather, func() {
		c.mu.Lock()
		delete(c.waves, r.Call)
		ring := w.ring
		c.mu.Unlock()
		c.send(ring)
	})
}

func (c *Cards) send(r Ring) {
	log := c.opts.Logger.With().Str("call", r.Call).Logger()
	phone, err := crm.ParsePhone(r.Caller, c.opts.Region)
	if err != nil {
		log.Debug().Err(err).Msg("call card: the caller id is no phone number; no card")
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), r.At.Add(c.opts.Fresh))
	defer cancel()
	err = c.n.NotifyCall(ctx, phone, r.Users)
	switch {
	case err == nil:
		c.sent.Add(1)
		log.Debug().Interface("users", r.Users).Dur("after_ring", time.Since(r.At)).Msg("call card shown")
	case ctx.Err() != nil || isDeadline(err):
		c.dropped.Add(1)
		log.Info().Interface("users", r.Users).Msg("call card dropped: not sendable within its freshness bound")
	default:
		c.failed.Add(1)
		log.Warn().Err(err).Interface("users", r.Users).Msg("call card failed")
	}
}

func isDeadline(err error) bool { return errors.Is(err, context.DeadlineExceeded) }
