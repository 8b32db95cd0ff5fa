// Package ari is crmlink's Stasis controller: for every call that enters Stasis(crmlink) it
// asks the router for a decision, rings the owner's phones and bridges the first to answer,
// or sets CRMLINK_* variables and continues the call in the fallback context. Beside it,
// the call observer (observer.go) turns every other call on the Asterisk into an outcome.
package ari

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/rs/zerolog"
	"golang.org/x/net/websocket"

	"github.com/crmlink/crmlink/board"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/routing/callcard"
)

// Options configure a Controller.
type Options struct {
	URL, WSURL         string // http://127.0.0.1:8088/ari, ws://127.0.0.1:8088/ari/events
	Username, Password string
	Application        string
	Decider            routing.Decider
	// Fallback is where calls continue when they are not routed. An empty Extension keeps
	// the number the caller dialled.
	FallbackContext   string
	FallbackExtension string
	FallbackPriority  int
	// LookupTimeout bounds the decision; the controller adds a small margin as a safety
	// net in case the Decider overruns it.
	LookupTimeout time.Duration
	RingTimeout   time.Duration
	// RESTTimeout bounds every ARI REST request.
	RESTTimeout time.Duration
	// MaxConns caps the HTTP connections to ARI (DefaultMaxConns when 0); keep it well
	// under Asterisk's http.conf session_limit.
	MaxConns int
	// ReconcileInterval is how often channels already in the application are checked for
	// calls nobody handles (after a websocket drop or a crmlink restart).
	ReconcileInterval time.Duration
	Logger            zerolog.Logger
	// OnOutcome, when set, is told how every call handled here ended; it must not block
	// for long (publish to a durable queue).
	OnOutcome func(routing.CallOutcome)
	// OnDecision, when set, is told once per incoming call the routing it got in the end,
	// as soon as that is settled: ROUTED once the owner answered (or the caller hung up
	// while the owner's phones rang), else FALLBACK with the reason the fallback context
	// got, which differs from the router's decision when ringing failed
	// (owner_unavailable: no phone reachable; owner_no_answer). It must not block (metrics).
	OnDecision func(routing.Call, routing.Decision)
	// OutgoingContext is where calls placed by office phones through Stasis(crmlink,outgoing)
	// continue (the context that dials the trunk).
	OutgoingContext string
	// Managers maps endpoints ("PJSIP/101") to their CRM users, to tell who answered.
	Managers map[string]crm.UserID
	// Board, when set, is told of every call in progress as it rings, is answered and
	// ends (the live view); it must not block.
	Board board.Calls
	// OnRing, when set, is told when the owner's phones start ringing (the incoming-call
	// card: one Ring per wave); it must not block.
	OnRing func(callcard.Ring)
	// DrainTimeout is how long Run keeps serving the calls in progress after it is told to
	// stop; new calls meanwhile go to the fallback. Past it, ringing stops and bridged calls
	// are left to Asterisk.
	DrainTimeout time.Duration
	// Transport is how REST requests reach Asterisk: TransportAuto (default),
	// TransportWebsocket or TransportHTTP.
	Transport string
	// ProbeTimeout bounds the wait for Asterisk's answer to the REST request sent over a
	// new websocket to learn whether it takes REST there (1 s when 0).
	ProbeTimeout time.Duration
	// Ringing is who rings the owner's phones: RingDialplan (default) or RingBridge.
	Ringing string
	// DialContext is where RingDialplan continues a routed call (extension: the number
	// dialled, priority 1); it Dial()s ${CRMLINK_DIAL} like FastAGI's wiring.
	DialContext string
}

// Controller is the Stasis application.
type Controller struct {
	opts     Options
	rest     *restClient
	presence presenceCache

	calls sync.Map // channel id -> *call: the caller channel and every leg it rings
	// bridges holds the ids of the bridges calls in progress own; any other crmlink bridge
	// was left by an instance that stopped and is cleaned up.
	bridges sync.Map

	// suspect holds the leftover bridges seen at the last reconcile, orphanLegs the legs
	// no call owned, stranded the answered callers in no bridge and no call (watch
	// goroutine only).
	suspect, orphanLegs, stranded map[string]bool

	connected atomic.Bool
	draining  atomic.Bool
	// noDialContext: a continue to the dial context found no such context (RingDialplan
	// with a dialplan from before it): calls ring the bridge way until a restart.
	noDialContext atomic.Bool
	active        atomic.Int64
	wg            sync.WaitGroup
	// asterisk is the Asterisk this controller serves (its asterisk_id), when it serves
	// one of several (Inbound); the outcomes of its calls carry it.
	asterisk string
}

// outgoingArg is the Stasis argument of calls placed by office phones:
// Stasis(crmlink,outgoing).
const outgoingArg = "outgoing"

// legArg marks the channels the controller originates towards managers, so their
// StasisStart is told apart from an incoming call's.
const legArg = "crmlink-leg"

// New checks the options and builds a controller; Run connects it.
func New(opts Options) (*Controller, error) {
	if opts.Decider == nil {
		return nil, errors.New("ari controller: no decider")
	}
	if opts.Application == "" || opts.URL == "" || opts.WSURL == "" {
		return nil, errors.New("ari controller: application, url and ws_url are required")
	}
	if opts.FallbackContext == "" {
		return nil, errors.New("ari controller: fallback context is required")
	}
	if opts.FallbackPriority < 1 {
		opts.FallbackPriority = 1
	}
	if opts.LookupTimeout <= 0 {
		opts.LookupTimeout = 1500 * time.Millisecond
	}
	if opts.RingTimeout <= 0 {
		opts.RingTimeout = 20 * time.Second
	}
	if opts.RESTTimeout <= 0 {
		opts.RESTTimeout = 2 * time.Second
	}
	if opts.ReconcileInterval <= 0 {
		opts.ReconcileInterval = 2 * time.Second
	}
	if opts.OutgoingContext == "" {
		opts.OutgoingContext = "crmlink-outgoing"
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.Board == nil {
		opts.Board = noBoard{}
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = time.Second
	}
	switch opts.Transport {
	case "":
		opts.Transport = TransportAuto
	case TransportAuto, TransportWebsocket, TransportHTTP:
	default:
		return nil, fmt.Errorf("ari controller: transport %q; allowed: %s", opts.Transport, strings.Join(Transports, ", "))
	}
	switch opts.Ringing {
	case "":
		opts.Ringing = RingDialplan
	case RingBridge, RingDialplan:
	default:
		return nil, fmt.Errorf("ari controller: ringing %q; allowed: %s", opts.Ringing, strings.Join(Ringings, ", "))
	}
	if opts.DialContext == "" {
		opts.DialContext = DefaultDialContext
	}
	// Only the ARI library's types are used: its REST calls take no context, run on
	// http.DefaultTransport with no cap on connections, and keep running when abandoned,
	// and its websocket cannot carry REST requests.
	return &Controller{opts: opts, rest: newRESTClient(opts.URL, opts.Username, opts.Password, opts.RESTTimeout, opts.MaxConns)}, nil
}

// Connected reports whether the application is registered in Asterisk.
func (c *Controller) Connected() bool { return c.connected.Load() }

// Transport is how REST requests go to Asterisk now: websocket (ARI REST over WebSocket,
// found at connect) or http.
func (c *Controller) Transport() string { return c.rest.transport() }

// ActiveCalls is the number of calls the controller is handling now.
func (c *Controller) ActiveCalls() int64 { return c.active.Load() }

// Run connects to Asterisk and handles calls until ctx ends. It then drains: calls in
// progress are followed to their end (up to DrainTimeout) while new ones go to the
// fallback, and only then is the websocket closed.
func (c *Controller) Run(ctx context.Context) error {
	return c.run(ctx, c.connectLoop)
}

// connLoop keeps the controller's event websocket up until ctx ends (events go to events,
// quit says the dispatcher stopped reading) and closes up once the first connection is ready.
type connLoop func(ctx context.Context, events chan<- ari.Event, quit <-chan struct{}, up chan<- struct{}, log zerolog.Logger)

// run is Run with the way to Asterisk: the controller connecting (connectLoop) or an
// Asterisk's connection accepted by Inbound.
func (c *Controller) run(ctx context.Context, loop connLoop) error {
	log := c.opts.Logger.With().Str("component", "ari").Str("app", c.opts.Application).Logger()
	// The websocket outlives ctx while calls drain; calls are stopped only when the drain
	// is over.
	wsCtx, closeWS := context.WithCancel(context.Background())
	callCtx, stopCalls := context.WithCancel(context.Background())
	defer stopCalls()
	events := make(chan ari.Event, eventBuffer)
	drained := make(chan struct{})
	up := make(chan struct{})
	connDone := make(chan struct{})
	go func() {
		defer close(connDone)
		loop(wsCtx, events, drained, up, log)
	}()
	defer func() { closeWS(); <-connDone }()
	defer c.rest.closeIdle()
	log.Info().Str("url", c.opts.URL).Str("transport", c.opts.Transport).Msg("connecting to ARI")
	select {
	case <-up:
	case <-ctx.Done():
		return nil
	}

	go c.watch(callCtx, log)
	go func() {
		<-ctx.Done()
		c.draining.Store(true)
		log.Info().Int64("calls", c.active.Load()).Msg("stopping: finishing calls in progress")
		idle := make(chan struct{})
		go func() { c.wg.Wait(); close(idle) }()
		select {
		case <-idle:
		case <-time.After(c.opts.DrainTimeout):
			log.Warn().Int64("calls", c.active.Load()).Msg("drain timeout: leaving the remaining calls to Asterisk")
		}
		stopCalls()
		close(drained)
	}()
	c.dispatch(callCtx, drained, events, log)
	c.connected.Store(false)
	c.wg.Wait()
	return nil
}

// eventBuffer is how many events wait for the dispatcher; the websocket reader waits
// when it is full (Asterisk buffers behind it, websocket_write_timeout in ari.conf).
const eventBuffer = 4096

// connectLoop keeps the event websocket up until ctx ends, reconnecting after a drop; up
// is closed once the first connection is ready.
func (c *Controller) connectLoop(ctx context.Context, events chan<- ari.Event, quit <-chan struct{}, up chan<- struct{}, log zerolog.Logger) {
	first := true
	for wait := 500 * time.Millisecond; ; {
		s, err := c.connect(ctx, events, quit, log)
		if err == nil {
			wait = 500 * time.Millisecond
			if first {
				first = false
				close(up)
			}
			stop := context.AfterFunc(ctx, s.close)
			err = <-s.readErr
			stop()
			c.rest.useSocket(nil)
			c.connected.Store(false)
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn().Err(err).Dur("retry_in", wait).Msg("ARI websocket down; calls take the dialplan fallback until it is back")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// connectedSocket is a socket whose reader runs; readErr tells why it stopped.
type connectedSocket struct {
	*socket
	readErr chan error
}

// connect opens the websocket, sets the application's event filter and learns whether
// Asterisk takes REST requests on the websocket: it sends one (GET the application) and
// waits ProbeTimeout for the answer. An Asterisk without ARI REST over WebSocket ignores
// it, and the requests go over HTTP.
func (c *Controller) connect(ctx context.Context, events chan<- ari.Event, quit <-chan struct{}, log zerolog.Logger) (connectedSocket, error) {
	conn, err := dialApp(ctx, c.opts.WSURL, c.opts.Application, c.opts.Username, c.opts.Password)
	if err != nil {
		return connectedSocket{}, err
	}
	s := startSocket(conn, events, quit, log)
	// Over HTTP: until the probe answers, Asterisk might filter the answer out.
	if err := c.rest.filterEvents(ctx, c.opts.Application, filteredEvents); err != nil {
		log.Warn().Err(err).Msg("cannot set the application's event filter; Asterisk sends every event")
	}
	if c.opts.Transport != TransportHTTP {
		pctx, cancel := context.WithTimeout(ctx, c.opts.ProbeTimeout)
		code, _, err := s.roundTrip(pctx, "GET", "applications/"+url.PathEscape(c.opts.Application), nil, nil)
		cancel()
		switch {
		case err == nil && code == 200:
			c.rest.useSocket(s.socket)
		case c.opts.Transport == TransportWebsocket:
			s.close()
			return connectedSocket{}, fmt.Errorf("asterisk.ari.transport is websocket, but Asterisk did not answer a REST request on the websocket within %s (status %d, %v): it needs ARI REST over WebSocket (Asterisk 20.14, 21.9, 22.4 or later)", c.opts.ProbeTimeout, code, err)
		default:
			log.Info().Err(err).Int("status", code).Msg("Asterisk does not answer REST requests on the websocket (before 20.14, 21.9, 22.4); they go over HTTP")
		}
	}
	c.ready(ctx, log)
	return s, nil
}

// startSocket starts reading a connected websocket.
func startSocket(conn *websocket.Conn, events chan<- ari.Event, quit <-chan struct{}, log zerolog.Logger) connectedSocket {
	s := connectedSocket{socket: newSocket(conn, events, quit, log), readErr: make(chan error, 1)}
	go func() { s.readErr <- s.read() }()
	return s
}

// ready finishes a connection: the endpoint states are read and calls are taken.
func (c *Controller) ready(ctx context.Context, log zerolog.Logger) {
	if err := c.refreshPresence(ctx); err != nil {
		log.Warn().Err(err).Msg("cannot list endpoint states; presence is asked per call until the next refresh")
	}
	c.connected.Store(true)
	log.Info().Str("transport", c.rest.transport()).Msg("ARI connected; application registered")
}

// serve takes an Asterisk's outbound websocket (accepted by Inbound, after its
// ApplicationRegistered) as the controller's connection: events and REST requests go over it.
func (c *Controller) serve(ctx context.Context, conn *websocket.Conn, events chan<- ari.Event, quit <-chan struct{}, log zerolog.Logger) (connectedSocket, error) {
	s := startSocket(conn, events, quit, log)
	c.rest.useSocket(s.socket)
	if err := c.rest.filterEvents(ctx, c.opts.Application, filteredEvents); err != nil {
		s.close()
		return connectedSocket{}, fmt.Errorf("set the application's event filter over the websocket: %w", err)
	}
	c.ready(ctx, log)
	return s, nil
}

// watch keeps the health state and the endpoint states fresh, picks up calls that entered
// the application while nobody listened (Asterisk does not repeat StasisStart after a
// websocket reconnect), and ends calls whose channels are gone although their last events
// never came.
func (c *Controller) watch(ctx context.Context, log zerolog.Logger) {
	t := time.NewTicker(c.opts.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.tick(ctx, log)
	}
}

// tick is one round of watch.
func (c *Controller) tick(ctx context.Context, log zerolog.Logger) {
	if err := c.refreshPresence(ctx); err != nil {
		log.Debug().Err(err).Msg("reconcile: list endpoint states")
	}
	app, err := c.rest.application(ctx, c.opts.Application)
	if err != nil || !app.registered {
		if c.connected.Swap(false) {
			log.Warn().Err(err).Msg("ARI application not registered; calls take the dialplan fallback until it is back")
		}
		return
	}
	if !c.connected.Swap(true) {
		log.Info().Msg("ARI application registered again")
	}
	if !sameTypes(app.allowed, filteredEvents) {
		// Another ARI client changed (or cleared) the filter: Asterisk would send
		// every event again, and the library's buffer drops what it cannot hold.
		log.Info().Strs("allowed", app.allowed).Msg("restoring the application's event filter")
		if err := c.rest.filterEvents(ctx, c.opts.Application, filteredEvents); err != nil {
			log.Warn().Err(err).Msg("cannot restore the application's event filter")
		}
	}
	c.reconcile(ctx, log)
}

// reconcile compares the calls in progress with the channels Asterisk has.
func (c *Controller) reconcile(ctx context.Context, log zerolog.Logger) {
	// Calls whose channels vanish end (and delete their bridges) before the sweep looks.
	at := time.Now()
	all, err := c.rest.channels(ctx)
	if err != nil {
		log.Warn().Err(err).Msg("reconcile: list channels")
		return
	}
	set := channelSet{at: at, ids: make(map[string]bool, len(all))}
	for _, ch := range all {
		set.ids[ch.ID] = true
	}
	c.calls.Range(func(id, v any) bool {
		if k := v.(*call); k.ch.ID == id {
			k.probe(set)
		}
		return true
	})
	bridged := c.sweepBridges(ctx, log)
	orphans, stranded := map[string]bool{}, map[string]bool{}
	for _, ch := range inApp(all, c.opts.Application) {
		if strings.HasPrefix(ch.ID, legPrefix) {
			// A leg in the application belongs to the call ringing it, or to a bridged
			// call from before a restart; any other was answered after its call stopped
			// ringing and its StasisStart was lost. It is seen twice (one reconcile
			// apart) before it is hung up: one its call has just hung up is still listed.
			if _, owned := c.calls.Load(ch.ID); !owned && bridged != nil && !bridged[ch.ID] {
				orphans[ch.ID] = true
				if c.orphanLegs[ch.ID] {
					c.endOrphanLeg(ctx, ch.ID, "reconcile: a leg no call owns", log)
				}
			}
			continue
		}
		if ch.State == "Up" {
			// An answered channel is a bridged call from before a restart that no longer
			// needs routing, unless it is in no bridge and no call of ours owns it: a
			// caller answered for the owner whose bridge was never made (crmlink stopped
			// in between) or whose call gave up on it while Asterisk did not answer. Seen
			// twice, one reconcile apart, it goes to the fallback instead of silence.
			if _, owned := c.calls.Load(ch.ID); !owned && bridged != nil && !bridged[ch.ID] {
				stranded[ch.ID] = true
				if c.stranded[ch.ID] {
					c.rescue(ctx, ch, log)
				}
			}
			continue
		}
		if _, handled := c.calls.Load(ch.ID); !handled {
			log.Info().Str("channel", ch.ID).Msg("reconcile: picking up a call nobody handled")
			c.start(ctx, ch, strings.HasSuffix(ch.Dialplan.AppData, ","+outgoingArg), log)
		}
	}
	c.orphanLegs, c.stranded = orphans, stranded
}

// rescue sends an answered caller no call owns to the fallback as interrupted, off the
// watch goroutine; one that cannot be continued is hung up rather than left in silence.
func (c *Controller) rescue(ctx context.Context, ch ari.ChannelData, log zerolog.Logger) {
	log = log.With().Str("channel", ch.ID).Logger()
	log.Warn().Msg("reconcile: an answered caller in no bridge and no call; sending it to the fallback")
	k := &call{c: c, ch: ch, log: log}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := k.fallback(cleanup(ctx), routing.FallbackDecision(routing.ReasonInterrupted))
		if err == nil || isGone(err) {
			return
		}
		log.Warn().Err(err).Msg("fallback of a stranded caller failed; hanging it up")
		k.hangup(ctx, ch.ID, "normal")
	}()
}

// endOrphanLeg hangs up a leg no call owns, off the caller's goroutine (the dispatcher
// never blocks); Run waits for it.
func (c *Controller) endOrphanLeg(ctx context.Context, id, why string, log zerolog.Logger) {
	log.Warn().Str("leg", id).Msg(why + "; hanging it up")
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := c.rest.hangup(cleanup(ctx), id, "normal"); err != nil && !isGone(err) {
			log.Warn().Err(err).Str("leg", id).Msg("hang up a leg no call owns")
		}
	}()
}

// sweepBridges ends the calls a stopped crmlink left bridged: when one side of such a call
// hangs up nobody ends the other, who would sit in silence. A bridge no call of ours owns
// with fewer than two channels is such a leftover; it is seen twice (one reconcile apart)
// before it is removed, so a bridge being set up right now is never touched. It returns
// the channels in any bridge (nil when the bridges could not be listed).
func (c *Controller) sweepBridges(ctx context.Context, log zerolog.Logger) map[string]bool {
	brs, err := c.rest.bridges(ctx)
	if err != nil {
		log.Debug().Err(err).Msg("reconcile: list bridges")
		return nil
	}
	bridged := map[string]bool{}
	for _, b := range brs {
		for _, ch := range b.Channels {
			bridged[ch] = true
		}
	}
	seen := map[string]bool{}
	for _, b := range brs {
		if !strings.HasPrefix(b.ID, bridgePrefix) || len(b.Channels) > 1 {
			continue
		}
		if _, owned := c.bridges.Load(b.ID); owned {
			continue
		}
		seen[b.ID] = true
		if !c.suspect[b.ID] {
			continue
		}
		log.Info().Str("bridge", b.ID).Strs("channels", b.Channels).Msg("reconcile: ending a call left half-bridged by a stopped crmlink")
		for _, ch := range b.Channels {
			if err := c.rest.hangup(ctx, ch, "normal"); err != nil && !errors.Is(err, errNotFound) {
				log.Warn().Err(err).Str("bridge", b.ID).Str("leg", ch).Msg("reconcile: hang up a leftover channel")
			}
		}
		if err := c.rest.deleteBridge(ctx, b.ID); err != nil && !errors.Is(err, errNotFound) {
			log.Warn().Err(err).Str("bridge", b.ID).Msg("reconcile: delete a leftover bridge")
		}
	}
	c.suspect = seen
	return bridged
}

// handledEvents are the ARI events the controller acts on.
var handledEvents = []string{
	ari.Events.StasisStart, ari.Events.StasisEnd, ari.Events.ChannelDestroyed, ari.Events.Dial,
	// The dial context's word that the owner did not answer (RingDialplan).
	ari.Events.ChannelUserevent,
}

// filteredEvents are what the application's event filter lets through: the events the
// controller acts on and the answers to REST requests over the websocket (Asterisk applies
// the filter to those too).
var filteredEvents = append(append([]string(nil), handledEvents...), restResponseEvent)

// sameTypes reports whether two lists hold the same event types, in any order.
func sameTypes(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[string]bool, len(a))
	for _, t := range a {
		seen[t] = true
	}
	for _, t := range b {
		if !seen[t] {
			return false
		}
	}
	return true
}

func isLeg(args []string) bool { return len(args) > 0 && args[0] == legArg }

func isOutgoing(args []string) bool { return len(args) > 0 && args[0] == outgoingArg }

// userOf is the CRM user whose phone an endpoint is; 0 for the operator desk and others.
func (c *Controller) userOf(endpoint string) crm.UserID { return c.opts.Managers[endpoint] }

// channelIDs lists the channels an event is about.
func channelIDs(e ari.Event) []string {
	switch v := e.(type) {
	case *ari.StasisStart:
		return []string{v.Channel.ID}
	case *ari.StasisEnd:
		return []string{v.Channel.ID}
	case *ari.ChannelDestroyed:
		return []string{v.Channel.ID}
	case *ari.ChannelHangupRequest:
		return []string{v.Channel.ID}
	case *ari.ChannelStateChange:
		return []string{v.Channel.ID}
	case *ari.Dial:
		return []string{v.Caller.ID}
	case *ari.ChannelUserevent:
		return []string{v.Channel.ID}
	}
	return nil
}
