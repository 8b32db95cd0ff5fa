package ari

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/net/websocket"

	"github.com/crmlink/crmlink/board"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/routing/callcard"
)

// ObserverOptions configure an Observer.
type ObserverOptions struct {
	URL, WSURL         string // as the controller's
	Username, Password string
	// Application is the observer's own ARI application ("crmlink-observer"): it takes no
	// calls, it only receives the events of all of them.
	Application string
	// Managers maps endpoints ("PJSIP/101") to their CRM users: who answered, who called
	// out. OfficeEndpoints are the other office phones (an operator desk): a call between
	// office phones is internal and records nothing.
	Managers        map[string]crm.UserID
	OfficeEndpoints []string
	// Names are the managers' names the call note shows with their talk times.
	Names map[crm.UserID]string
	// Credit is which manager who talked the CRM credits (default CreditLastAnswered).
	Credit      Credit
	RESTTimeout time.Duration
	Logger      zerolog.Logger
	// OnOutcome is told how every client call the controller did not handle ended; it
	// must not block for long (publish to a durable queue).
	OnOutcome func(routing.CallOutcome)
	// Board, when set, is told of every call in progress as it rings, is answered and
	// ends (the live view); it must not block.
	Board board.Calls
	// OnRing, when set, is told each time a manager's phone starts ringing for a client's
	// incoming call (a Dial() of any wiring: FastAGI, SIP redirect, the fallback ring group
	// or queue); the controller's own legs are its to report. It must not block.
	OnRing func(callcard.Ring)
	// OnSkipped is told of each client call that records nothing and why: SkipWithheld,
	// SkipUnobserved (a metric).
	OnSkipped func(reason string)
	// OnGap is told how many channels Asterisk created and destroyed while the websocket
	// was down (calls that began and ended in the gap, unobserved; a metric).
	OnGap func(channels int64)
}

// Observer follows every call on the Asterisk, however it is wired (FastAGI, SIP
// redirect, a plain Dial() to a manager's number, an office phone dialling out), over a
// websocket of its own: a broken observer never touches the controller's calls.
type Observer struct {
	opts      ObserverOptions
	rest      *restClient
	connected atomic.Bool
	events    atomic.Int64
	skipped   sync.Map // reason -> *atomic.Int64
}

// NewObserver checks the options; Run connects.
func NewObserver(opts ObserverOptions) (*Observer, error) {
	if opts.Application == "" || opts.URL == "" || opts.WSURL == "" {
		return nil, errors.New("ari observer: application, url and ws_url are required")
	}
	if opts.RESTTimeout <= 0 {
		opts.RESTTimeout = 2 * time.Second
	}
	if opts.Board == nil {
		opts.Board = noBoard{}
	}
	return &Observer{opts: opts, rest: newRESTClient(opts.URL, opts.Username, opts.Password, opts.RESTTimeout, 2)}, nil
}

// Connected reports whether the observer's websocket is up and filtered.
func (o *Observer) Connected() bool { return o.connected.Load() }

// Events is how many events the observer has read since it started.
func (o *Observer) Events() int64 { return o.events.Load() }

// Skipped is how many client calls recorded nothing for the reason (SkipWithheld,
// SkipUnobserved) since the observer started.
func (o *Observer) Skipped(reason string) int64 {
	n, ok := o.skipped.Load(reason)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// Run follows calls until ctx ends, reconnecting after a websocket drop.
func (o *Observer) Run(ctx context.Context) error {
	log := o.opts.Logger.With().Str("component", "observer").Str("app", o.opts.Application).Logger()
	defer o.rest.closeIdle()
	t := newTracker(o.opts.Managers, o.opts.OfficeEndpoints)
	t.names = o.opts.Names
	if o.opts.Credit != "" {
		t.credit = o.opts.Credit
	}
	t.skipped = func(reason string) {
		n, _ := o.skipped.LoadOrStore(reason, new(atomic.Int64))
		if n.(*atomic.Int64).Add(1) == 1 && reason == SkipWithheld {
			log.Info().Msg("a call with a withheld or non-numeric caller id ended: such calls write nothing to the CRM (no contact to find or call back); counted in crmlink_observer_calls_not_recorded_total{reason=\"withheld\"}, logged once")
		}
		if o.opts.OnSkipped != nil {
			o.opts.OnSkipped(reason)
		}
	}
	for wait := time.Second; ; {
		err := o.session(ctx, t, log)
		o.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn().Err(err).Dur("retry_in", wait).Msg("observer websocket down; calls that end meanwhile are not recorded")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// session is one websocket connection. The application subscribes to every channel
// ("channel:", no id) and filters the events down to ObservedEvents. Not subscribeAll:
// that also subscribes to device states, and Asterisk 22 can deadlock its ARI when such
// an application's websocket closes (asterisk/asterisk#2170: GET /applications hangs
// from then on).
func (o *Observer) session(ctx context.Context, t *tracker, log zerolog.Logger) error {
	ws, err := dialApp(ctx, o.opts.WSURL, o.opts.Application, o.opts.Username, o.opts.Password)
	if err != nil {
		return fmt.Errorf("observer: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = ws.Close() })
	defer stop()
	defer ws.Close()
	// The filter first, so that no unfiltered event of a busy PBX arrives in between.
	if err := o.rest.filterEvents(ctx, o.opts.Application, ObservedEvents); err != nil {
		return fmt.Errorf("observer event filter: %w", err)
	}
	if err := o.rest.subscribe(ctx, o.opts.Application, "channel:"); err != nil {
		return fmt.Errorf("observer subscription to all channels: %w", err)
	}
	// Calls already going on: those that began before crmlink started (or restarted) or
	// while the websocket was down are followed from now to their end; those followed
	// before a drop that ended meanwhile would never end here.
	var all []obsChannel
	if err := o.rest.get(ctx, "/channels", &all); err != nil {
		return fmt.Errorf("observer: list the channels: %w", err)
	}
	live := make(map[string]bool, len(all))
	for _, ch := range all {
		live[ch.ID] = true
	}
	if n := t.forgetGone(live); n > 0 {
		log.Warn().Int("calls", n).Msg("calls ended while the observer's websocket was down; not recorded")
	}
	if n := t.gap(all); n > 0 {
		log.Warn().Int64("channels", n).Msg("channels came and went while the observer's websocket was down: their calls are not recorded")
		if o.opts.OnGap != nil {
			o.opts.OnGap(n)
		}
	}
	t.seed(all, time.Now())
	o.connected.Store(true)
	log.Info().Msg("observing every call")
	warned := false
	for {
		var data []byte
		if err := websocket.Message.Receive(ws, &data); err != nil {
			return fmt.Errorf("observer websocket: %w", err)
		}
		o.events.Add(1)
		log.Trace().RawJSON("event", data).Msg("observer event")
		var e obsEvent
		if err := json.Unmarshal(data, &e); err != nil {
			log.Warn().Err(err).Msg("observer: undecodable event skipped")
			continue
		}
		if e.Type == "ApplicationReplaced" {
			// Reconnecting would take the application back and leave the other instance
			// deaf in turn: say so and stay down.
			o.connected.Store(false)
			log.Error().Msg("another websocket took over the observer's application (a second crmlink with the same asterisk.observer.application?): this instance observes no more calls; give each instance its own application name")
			continue
		}
		if !warned && e.Type == "ChannelCreated" && e.Channel != nil && e.Channel.Vars[linkedIDVar] == "" {
			warned = true
			log.Warn().Msg("ari.conf has no channelvars = " + linkedIDVar + ",...: a call's channels are followed through Dial() only; see docs/configuration.md")
		}
		t.show(e, o.opts.Board)
		if o.opts.OnRing != nil {
			if r, ok := t.ringing(e); ok {
				o.opts.OnRing(r)
			}
		}
		out, done := t.feed(e)
		if !done {
			continue
		}
		log.Info().Str("linkedid", out.ID).Str("direction", string(out.Direction)).Bool("answered", out.Answered).
			Int64("answered_by", int64(out.AnsweredBy)).Dur("ring", out.RingDuration).Dur("talk", out.TalkDuration).
			Str("result", string(out.Decision.Result)).Msg("observed call ended")
		if o.opts.OnOutcome != nil {
			o.opts.OnOutcome(out)
		}
	}
}
