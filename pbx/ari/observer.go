package ari

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
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
	// Inbound: the application lives on the ARI Outbound WebSockets Asterisks open to
	// crmlink (served by Inbound.Observe), one per Asterisk, instead of crmlink connecting
	// to URL; REST requests go over each connection and each outcome names its Asterisk.
	Inbound bool
	// PresenceTTL, with Inbound, is how long the endpoint list each connection loads from
	// its Asterisk answers the router about phone presence (DefaultPresenceTTL when 0): a
	// phone that logs out is seen offline at the latest this long after.
	PresenceTTL time.Duration
}

// Observer follows every call on the Asterisk, however it is wired (FastAGI, SIP
// redirect, a plain Dial() to a manager's number, an office phone dialling out), over a
// websocket of its own: a broken observer never touches the controller's calls.
//
// With Inbound it follows several Asterisks, each over the connection that Asterisk opened
// to this instance: a tracker per Asterisk, kept across its reconnections.
type Observer struct {
	opts      ObserverOptions
	rest      *restClient
	connected atomic.Int32 // websockets up and filtered
	events    atomic.Int64
	skipped   sync.Map // reason -> *atomic.Int64
	// presence, with Inbound, is told of every connection (Inbound.Observe).
	presence *asteriskPresence
	mu       sync.Mutex
	trackers map[string]*asteriskTracker // with Inbound: by Asterisk id
}

// asteriskTracker is the tracker of one Asterisk's calls and whether a connection uses it.
type asteriskTracker struct {
	t     *tracker
	inUse bool
}

// NewObserver checks the options; Run connects.
func NewObserver(opts ObserverOptions) (*Observer, error) {
	if opts.Application == "" || (!opts.Inbound && (opts.URL == "" || opts.WSURL == "")) {
		return nil, errors.New("ari observer: application, url and ws_url are required")
	}
	if opts.RESTTimeout <= 0 {
		opts.RESTTimeout = 2 * time.Second
	}
	if opts.Board == nil {
		opts.Board = noBoard{}
	}
	return &Observer{opts: opts, rest: newRESTClient(opts.URL, opts.Username, opts.Password, opts.RESTTimeout, 2),
		trackers: map[string]*asteriskTracker{}}, nil
}

// Connected reports whether the observer's websocket is up and filtered (with Inbound:
// one Asterisk's at least).
func (o *Observer) Connected() bool { return o.connected.Load() > 0 }

// Connections is how many Asterisks the observer follows now.
func (o *Observer) Connections() int { return int(o.connected.Load()) }

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

// newTracker is a tracker with the observer's settings.
func (o *Observer) newTracker(log zerolog.Logger) *tracker {
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
	return t
}

// Run follows calls until ctx ends, reconnecting after a websocket drop. With Inbound it
// only waits: Asterisks connect to Inbound.
func (o *Observer) Run(ctx context.Context) error {
	if o.opts.Inbound {
		<-ctx.Done()
		return nil
	}
	log := o.opts.Logger.With().Str("component", "observer").Str("app", o.opts.Application).Logger()
	defer o.rest.closeIdle()
	t := o.newTracker(log)
	for wait := time.Second; ; {
		err := o.session(ctx, t, log)
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
	return o.follow(ctx, o.rest, t, "", ObservedEvents, func() ([]byte, error) {
		var data []byte
		err := websocket.Message.Receive(ws, &data)
		return data, err
	}, log)
}

// serveConn follows the calls of the Asterisk that opened conn (an ARI Outbound WebSocket
// registering the observer's application, accepted by Inbound) until it closes or ctx
// ends. The subscription, the event filter and the list of channels are asked over conn.
func (o *Observer) serveConn(ctx context.Context, conn *websocket.Conn, asterisk string, log zerolog.Logger) {
	log = log.With().Str("component", "observer").Str("app", o.opts.Application).Str("asterisk", asterisk).Logger()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Events queue here while the subscription is set up and the channels listed, so that
	// the REST answers behind them keep arriving.
	msgs := make(chan []byte, 4096)
	s := newSocket(conn, nil, nil, log)
	s.raw = func(data []byte) {
		select {
		case msgs <- data:
		case <-ctx.Done():
		}
	}
	go func() { _ = s.read() }()
	stop := context.AfterFunc(ctx, s.close)
	defer stop()
	rest := newRESTClient("", "", "", o.opts.RESTTimeout, 1)
	rest.useSocket(s)
	t := o.claimTracker(asterisk, log)
	defer o.releaseTracker(asterisk, t)
	if o.presence != nil {
		src := newRESTPresence(rest, o.opts.PresenceTTL) // one endpoint list per connection
		defer o.presence.add(asterisk, src)()
		// FastAGI calls name their Asterisk by its system name (routing.SystemName).
		if name := systemName(ctx, rest, log); name != "" {
			defer o.presence.add(name, src)()
		}
	}
	log.Info().Msg("ARI inbound: Asterisk connected the call observer")
	err := o.follow(ctx, rest, t, asterisk, append(slices.Clone(ObservedEvents), restResponseEvent), func() ([]byte, error) {
		select { // what arrived before the connection closed first
		case data := <-msgs:
			return data, nil
		default:
		}
		select {
		case data := <-msgs:
			return data, nil
		case <-s.done:
			return nil, s.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, log)
	if ctx.Err() == nil || errors.Is(err, errReplaced) {
		log.Warn().Err(err).Msg("ARI inbound: the observer's connection closed; Asterisk reconnects (websocket_client.conf reconnect_interval), to this instance or another; calls that end meanwhile are not recorded")
	}
}

// systemName asks Asterisk its system name (asterisk.conf systemname); "" when it has
// none or does not say.
func systemName(ctx context.Context, rest *restClient, log zerolog.Logger) string {
	var info struct {
		Config struct {
			Name string `json:"name"`
		} `json:"config"`
	}
	if err := rest.do(ctx, http.MethodGet, "/asterisk/info", url.Values{"only": {"config"}}, nil, &info); err != nil {
		log.Warn().Err(err).Msg("observer: Asterisk's system name unknown: phone presence for its FastAGI calls is asked of every Asterisk connected here")
		return ""
	}
	if info.Config.Name == "" {
		log.Error().Msg("observer: this Asterisk has no systemname (asterisk.conf [options] systemname): " +
			"several Asterisks without one can hand out the same linkedids, and a call's linkedid is its outcome's key, " +
			"so one of two such calls would get no call note; its FastAGI calls' phone presence is asked of every Asterisk connected here. " +
			"Set a distinct systemname on each Asterisk")
	}
	return info.Config.Name
}

// claimTracker is the tracker of an Asterisk's calls, kept from its last connection here;
// a fresh one while another connection of the same Asterisk still uses it (a reconnection
// before the old connection's close was noticed).
func (o *Observer) claimTracker(asterisk string, log zerolog.Logger) *tracker {
	o.mu.Lock()
	defer o.mu.Unlock()
	at := o.trackers[asterisk]
	switch {
	case at == nil:
		at = &asteriskTracker{t: o.newTracker(log)}
		o.trackers[asterisk] = at
	case at.inUse:
		return o.newTracker(log)
	}
	at.inUse = true
	return at.t
}

func (o *Observer) releaseTracker(asterisk string, t *tracker) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if at := o.trackers[asterisk]; at != nil && at.t == t {
		at.inUse = false
	}
}

// errReplaced: Asterisk gave the application to another connection.
var errReplaced = errors.New("ApplicationReplaced")

// follow sets up the application (filter, subscription to every channel) over rest, takes
// up the calls going on, then feeds every event next reads to the tracker until next fails.
// asterisk, when not empty, names the Asterisk in every outcome.
func (o *Observer) follow(ctx context.Context, rest *restClient, t *tracker, asterisk string, filter []string, next func() ([]byte, error), log zerolog.Logger) error {
	// The filter first, so that no unfiltered event of a busy PBX arrives in between.
	if err := rest.filterEvents(ctx, o.opts.Application, filter); err != nil {
		return fmt.Errorf("observer event filter: %w", err)
	}
	if err := rest.subscribe(ctx, o.opts.Application, "channel:"); err != nil {
		return fmt.Errorf("observer subscription to all channels: %w", err)
	}
	// Calls already going on: those that began before crmlink started (or restarted) or
	// while the websocket was down are followed from now to their end; those followed
	// before a drop that ended meanwhile would never end here.
	var all []obsChannel
	if err := rest.get(ctx, "/channels", &all); err != nil {
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
	o.connected.Add(1)
	up := true
	defer func() {
		if up {
			o.connected.Add(-1)
		}
	}()
	log.Info().Int("calls_going_on", len(t.calls)).Msg("observing every call")
	warned := false
	for {
		data, err := next()
		if err != nil {
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
			if asterisk != "" {
				// Asterisk reloaded its outbound websocket's configuration: the application
				// is registered anew, without our filter and subscription. Closing makes
				// Asterisk reconnect, and the set-up runs again.
				return errReplaced
			}
			// Reconnecting would take the application back and leave the other instance
			// deaf in turn: say so and stay down.
			if up {
				up = false
				o.connected.Add(-1)
			}
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
		out.Asterisk = asterisk
		log.Info().Str("linkedid", out.ID).Time("start", out.Start).Str("direction", string(out.Direction)).Bool("answered", out.Answered).
			Int64("answered_by", int64(out.AnsweredBy)).Dur("ring", out.RingDuration).Dur("talk", out.TalkDuration).
			Str("result", string(out.Decision.Result)).Msg("observed call ended")
		if o.opts.OnOutcome != nil {
			o.opts.OnOutcome(out)
		}
	}
}
