// Package ari is crmlink's Stasis controller: for every call that enters Stasis(crmlink) it
// asks the router for a decision, rings the owner's phones and bridges the first to answer,
// or sets CRMLINK_* variables and continues the call in the fallback context.
package ari

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/CyCoreSystems/ari/v6/client/native"
	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
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
	// RESTTimeout bounds every ARI REST request made on the call path.
	RESTTimeout time.Duration
	// ReconcileInterval is how often channels already in the application are checked for
	// calls nobody handles (after a websocket drop or a crmlink restart).
	ReconcileInterval time.Duration
	Logger            zerolog.Logger
	// OnOutcome, when set, is told how every call handled here ended; it must not block
	// for long (publish to a durable queue).
	OnOutcome func(routing.CallOutcome)
	// OutgoingContext is where calls placed by office phones through Stasis(crmlink,outgoing)
	// continue (the context that dials the trunk).
	OutgoingContext string
	// Managers maps endpoints ("PJSIP/101") to their CRM users, to tell who answered.
	Managers map[string]crm.UserID
	// DrainTimeout is how long Run keeps serving the calls in progress after it is told to
	// stop; new calls meanwhile go to the fallback. Past it, ringing stops and bridged calls
	// are left to Asterisk.
	DrainTimeout time.Duration
}

// Controller is the Stasis application.
type Controller struct {
	opts   Options
	client ari.Client
	rest   *restClient

	calls sync.Map // channel id -> *call: the caller channel and every leg it rings
	// bridges holds the ids of the bridges calls in progress own; any other crmlink bridge
	// was left by an instance that stopped and is cleaned up.
	bridges sync.Map

	// suspect holds the leftover bridges seen at the last reconcile (watch goroutine only).
	suspect map[string]bool

	connected atomic.Bool
	draining  atomic.Bool
	active    atomic.Int64
	wg        sync.WaitGroup
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
	// The ARI library uses http.DefaultTransport, which keeps only two idle connections per
	// host: at tens of calls per second every REST call would open a new TCP connection.
	if t, ok := http.DefaultTransport.(*http.Transport); ok && t.MaxIdleConnsPerHost < 64 {
		t.MaxIdleConnsPerHost = 64
	}
	return &Controller{opts: opts, rest: newRESTClient(opts.URL, opts.Username, opts.Password, opts.RESTTimeout)}, nil
}

// Connected reports whether the application is registered in Asterisk.
func (c *Controller) Connected() bool { return c.connected.Load() }

// ActiveCalls is the number of calls the controller is handling now.
func (c *Controller) ActiveCalls() int64 { return c.active.Load() }

// Run connects to Asterisk and handles calls until ctx ends. It then drains: calls in
// progress are followed to their end (up to DrainTimeout) while new ones go to the
// fallback, and only then is the websocket closed.
func (c *Controller) Run(ctx context.Context) error {
	log := c.opts.Logger.With().Str("component", "ari").Str("app", c.opts.Application).Logger()
	cl := native.New(&native.Options{
		Application:  c.opts.Application,
		URL:          c.opts.URL,
		WebsocketURL: c.opts.WSURL,
		Username:     c.opts.Username,
		Password:     c.opts.Password,
		Logger:       newSlogLogger(log),
	})
	// The library ties the websocket's lifetime to the context it connects with: give it
	// one of its own so the connection outlives ctx while calls drain.
	wsCtx, closeWS := context.WithCancel(context.Background())
	defer closeWS()
	// Calls are stopped only when the drain is over.
	callCtx, stopCalls := context.WithCancel(context.Background())
	defer stopCalls()
	// The library blocks until the first websocket connects and retries forever: wait for
	// it in a goroutine so Run can still be stopped.
	up := make(chan error, 1)
	go func() { up <- cl.ConnectWithContext(wsCtx) }()
	log.Info().Str("url", c.opts.URL).Msg("connecting to ARI")
	select {
	case err := <-up:
		if err != nil {
			return fmt.Errorf("connect ARI %s: %w", c.opts.URL, err)
		}
	case <-ctx.Done():
		return nil
	}
	c.client = cl
	defer cl.Close()

	// Only the events calls are driven by: the library's subscription buffer holds 100
	// events and drops the rest, and Asterisk sends a dozen ChannelVarset and similar
	// events per call that would crowd it out under load.
	sub := cl.Bus().Subscribe(nil, handledEvents...)
	defer sub.Cancel()
	if err := c.rest.filterEvents(ctx, c.opts.Application, handledEvents); err != nil {
		log.Warn().Err(err).Msg("cannot set the application's event filter; Asterisk sends every event")
	}
	c.connected.Store(true)
	log.Info().Msg("ARI connected; application registered")

	go c.watch(callCtx, log)
	drained := make(chan struct{})
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
	c.dispatch(callCtx, drained, sub, log)
	c.connected.Store(false)
	c.wg.Wait()
	return nil
}

// dispatch reads the event bus as fast as it can: the library drops events when its
// 100-slot buffer is full, so nothing here blocks. New calls start their own goroutine;
// events of calls in progress go to that call's mailbox.
func (c *Controller) dispatch(ctx context.Context, stop <-chan struct{}, sub ari.Subscription, log zerolog.Logger) {
	for {
		select {
		case <-stop:
			return
		case e, ok := <-sub.Events():
			if !ok {
				return
			}
			if ss, isStart := e.(*ari.StasisStart); isStart && !isLeg(ss.Args) {
				c.start(ctx, ss.Channel, isOutgoing(ss.Args), log)
				continue
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

// watch keeps the health state true and picks up calls that entered the application while
// nobody listened: Asterisk does not repeat StasisStart after a websocket reconnect.
func (c *Controller) watch(ctx context.Context, log zerolog.Logger) {
	t := time.NewTicker(c.opts.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		registered, err := c.rest.applicationRegistered(ctx, c.opts.Application)
		if err != nil || !registered {
			if c.connected.Swap(false) {
				log.Warn().Err(err).Msg("ARI application not registered; calls take the dialplan fallback until it is back")
			}
			continue
		}
		if !c.connected.Swap(true) {
			log.Info().Msg("ARI application registered again")
		}
		c.sweepBridges(ctx, log)
		chans, err := c.rest.channelsInApp(ctx, c.opts.Application)
		if err != nil {
			log.Warn().Err(err).Msg("reconcile: list channels")
			continue
		}
		for _, ch := range chans {
			if strings.HasPrefix(ch.ID, legPrefix) || ch.State == "Up" {
				// Legs belong to their call; an answered channel is a bridged call
				// from before a restart that no longer needs routing.
				continue
			}
			if _, handled := c.calls.Load(ch.ID); !handled {
				log.Info().Str("channel", ch.ID).Msg("reconcile: picking up a call nobody handled")
				c.start(ctx, ch, strings.HasSuffix(ch.Dialplan.AppData, ","+outgoingArg), log)
			}
		}
	}
}

// sweepBridges ends the calls a stopped crmlink left bridged: when one side of such a call
// hangs up nobody ends the other, who would sit in silence. A bridge no call of ours owns
// with fewer than two channels is such a leftover; it is seen twice (one reconcile apart)
// before it is removed, so a bridge being set up right now is never touched.
func (c *Controller) sweepBridges(ctx context.Context, log zerolog.Logger) {
	brs, err := c.rest.bridges(ctx)
	if err != nil {
		return
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
			_ = bounded(ctx, c.opts.RESTTimeout, func() error {
				return c.client.Channel().Hangup(ari.NewKey(ari.ChannelKey, ch), "normal")
			})
		}
		_ = bounded(ctx, c.opts.RESTTimeout, func() error {
			return c.client.Bridge().Delete(ari.NewKey(ari.BridgeKey, b.ID))
		})
	}
	c.suspect = seen
}

// EndpointsOnline tells the router whether manager phones are reachable, from Asterisk's
// endpoint state. Dial strings that are not a single endpoint (a mobile through a trunk,
// PJSIP/79161234567@trunk) cannot be checked and count as online.
func (c *Controller) EndpointsOnline(ctx context.Context, endpoints []string) ([]bool, error) {
	out := make([]bool, len(endpoints))
	var firstErr error
	for i, e := range endpoints {
		tech, res, ok := strings.Cut(e, "/")
		if !ok || strings.Contains(res, "@") {
			out[i] = true
			continue
		}
		state, err := c.rest.endpointState(ctx, tech, res)
		if err != nil {
			out[i] = true
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		out[i] = state != "offline"
	}
	return out, firstErr
}

// handledEvents are the ARI events the controller acts on.
var handledEvents = []string{
	ari.Events.StasisStart, ari.Events.StasisEnd, ari.Events.ChannelDestroyed, ari.Events.Dial,
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
	}
	return nil
}
