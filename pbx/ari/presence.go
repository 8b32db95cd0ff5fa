package ari

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/crmlink/crmlink/routing"
)

// presenceCache holds every endpoint's state from one GET /endpoints, refreshed by the
// reconciler, so that routing a call to an online phone asks Asterisk nothing.
type presenceCache struct {
	mu     sync.RWMutex
	states map[string]string // "PJSIP/101" -> online, offline, unknown
	at     time.Time
}

func (p *presenceCache) store(states map[string]string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.states, p.at = states, at
}

func (p *presenceCache) loadedAt() time.Time {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.at
}

// markOffline records that a phone could not be reached, so that the next call asks
// Asterisk about it instead of trusting the last refresh.
func (p *presenceCache) markOffline(endpoint string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.states == nil {
		return
	}
	if _, ok := p.states[endpoint]; ok {
		p.states[endpoint] = "offline"
	}
}

// online reports a cached state no older than maxAge that is not offline.
func (p *presenceCache) online(endpoint string, now time.Time, maxAge time.Duration) bool {
	state, ok := p.state(endpoint, now, maxAge)
	return ok && state != "offline"
}

// state is an endpoint's cached state when the list holding it is no older than maxAge.
func (p *presenceCache) state(endpoint string, now time.Time, maxAge time.Duration) (string, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.states == nil || now.Sub(p.at) > maxAge {
		return "", false
	}
	state, ok := p.states[endpoint]
	return state, ok
}

// refreshPresence reloads the endpoint states.
func (c *Controller) refreshPresence(ctx context.Context) error {
	at := time.Now()
	states, err := c.rest.endpointStates(ctx)
	if err != nil {
		return err
	}
	c.presence.store(states, at)
	return nil
}

// PresenceAt is when the endpoint list routing trusts was last loaded from Asterisk (zero
// before the first load).
func (c *Controller) PresenceAt() time.Time { return c.presence.loadedAt() }

// EndpointsOnline tells the router whether manager phones are reachable, from Asterisk's
// endpoint state (the controller serves one Asterisk: asterisk is not looked at). Dial
// strings that are not a single endpoint (a mobile through a trunk,
// PJSIP/79161234567@trunk) cannot be checked and count as online.
//
// An endpoint the last refresh (at most a few reconcile intervals ago) saw online is taken
// as online without asking; any other is asked about, so a phone that has just registered
// rings at once. A phone that went offline since the refresh is still tried: Asterisk
// refuses its leg at once, the call goes to the fallback as owner_unavailable, and the
// phone is asked about on the next call.
func (c *Controller) EndpointsOnline(ctx context.Context, _ string, endpoints []string) ([]bool, error) {
	return endpointsOnline(ctx, c.rest, &c.presence, c.presenceMaxAge(), endpoints, false)
}

// endpointsOnline answers EndpointsOnline from cache where it saw an endpoint online no
// longer than maxAge ago, else from Asterisk over rest. With trustOffline (a list loaded
// while this call waited) an endpoint the list has offline is not asked again either.
func endpointsOnline(ctx context.Context, rest *restClient, cache *presenceCache, maxAge time.Duration, endpoints []string, trustOffline bool) ([]bool, error) {
	out := make([]bool, len(endpoints))
	var firstErr error
	now := time.Now()
	for i, e := range endpoints {
		tech, res, ok := strings.Cut(e, "/")
		if !ok || strings.Contains(res, "@") {
			out[i] = true
			continue
		}
		if state, ok := cache.state(e, now, maxAge); ok && (trustOffline || state != "offline") {
			out[i] = state != "offline"
			continue
		}
		state, err := rest.endpointState(ctx, tech, res)
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

// presenceMaxAge is how long a refreshed endpoint list is trusted: a refresh or two may
// fail or be late.
func (c *Controller) presenceMaxAge() time.Duration { return 3 * c.opts.ReconcileInterval }

// errNoAsterisk: no Asterisk is connected to answer for its phones.
var errNoAsterisk = errors.New("no Asterisk connected over an ARI outbound websocket: phone presence unknown")

// asteriskPresence is the phone presence of the Asterisks connected to this instance over
// their ARI Outbound WebSockets, each answered over a connection of its own (the Stasis
// controller's or the call observer's, whichever this instance holds): a phone is on one
// Asterisk, and the owner's phones ring on the Asterisk the call came from.
type asteriskPresence struct {
	mu sync.Mutex
	by map[string][]routing.Presence // asterisk id -> its connections here, oldest first
}

func newAsteriskPresence() *asteriskPresence {
	return &asteriskPresence{by: map[string][]routing.Presence{}}
}

// add makes a connection answer for its Asterisk until the returned remove is called.
func (p *asteriskPresence) add(asterisk string, src routing.Presence) (remove func()) {
	p.mu.Lock()
	p.by[asterisk] = append(p.by[asterisk], src)
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		srcs := slices.DeleteFunc(p.by[asterisk], func(s routing.Presence) bool { return s == src })
		if len(srcs) == 0 {
			delete(p.by, asterisk)
			return
		}
		p.by[asterisk] = srcs
	}
}

// EndpointsOnline asks the call's Asterisk, named by its entity id (a call through the
// Stasis controller) or its system name (FastAGI: the prefix of the channel ids, known here
// from the observer's connection). A call whose Asterisk is not told (no systemname, the
// SIP redirect, GET /v1/route) asks every Asterisk connected here: an endpoint is online
// when one of them has it online. A named Asterisk not connected here, none connected, or
// one that cannot answer is an error, and the router rings every endpoint: the phone may
// be registered on an Asterisk this instance does not see.
func (p *asteriskPresence) EndpointsOnline(ctx context.Context, asterisk string, endpoints []string) ([]bool, error) {
	p.mu.Lock()
	var srcs []routing.Presence
	if asterisk != "" {
		if own := p.by[asterisk]; len(own) > 0 {
			srcs = own[:1]
		}
	} else {
		for _, own := range p.by {
			if !slices.Contains(srcs, own[0]) { // an Asterisk by entity id and system name
				srcs = append(srcs, own[0])
			}
		}
	}
	p.mu.Unlock()
	if len(srcs) == 0 {
		return nil, errNoAsterisk
	}
	if len(srcs) == 1 {
		return srcs[0].EndpointsOnline(ctx, asterisk, endpoints)
	}
	// Every Asterisk at once: the slowest, not their sum, bounds the wait, and ctx (the
	// router's deadline) bounds that.
	type answer struct {
		on  []bool
		err error
	}
	answers := make(chan answer, len(srcs)) // a source answering late is not waited for
	for _, src := range srcs {
		go func() {
			on, err := src.EndpointsOnline(ctx, asterisk, slices.Clone(endpoints))
			answers <- answer{on, err}
		}()
	}
	out := make([]bool, len(endpoints))
	for range srcs {
		select {
		case a := <-answers:
			if a.err != nil {
				return nil, a.err // unknown on one Asterisk: the router rings every endpoint
			}
			for i := range min(len(out), len(a.on)) {
				out[i] = out[i] || a.on[i]
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("phone presence: %d Asterisks asked, not all answered: %w", len(srcs), ctx.Err())
		}
	}
	return out, nil
}

// DefaultPresenceTTL is how long the call observer's connection trusts the endpoint list
// it loaded from its Asterisk: the controller's reconcile interval, at which the
// controller reloads its own.
const DefaultPresenceTTL = 2 * time.Second

// restPresence answers for the endpoints of the Asterisk at the other end of rest (the call
// observer's connection, which runs no reconciler). Its endpoint list is kept as the
// controller keeps its own and trusted for ttl: it is loaded by the first call that finds
// it older (one load at a time; the calls arriving meanwhile wait for it, each no longer
// than its context), so calls to a registered phone cost one GET /endpoints per ttl, and a
// phone that logged out is seen offline at the latest ttl after. A phone the list has
// offline is asked about on each call, as by the controller, so that one that has just
// registered rings at once.
type restPresence struct {
	rest  *restClient
	ttl   time.Duration
	cache presenceCache
	// flight is the one load under way; calls arriving meanwhile share it.
	flight singleflight.Group
}

func newRESTPresence(rest *restClient, ttl time.Duration) *restPresence {
	if ttl <= 0 {
		ttl = DefaultPresenceTTL
	}
	return &restPresence{rest: rest, ttl: ttl}
}

func (r *restPresence) EndpointsOnline(ctx context.Context, _ string, endpoints []string) ([]bool, error) {
	if time.Since(r.cache.loadedAt()) <= r.ttl {
		return endpointsOnline(ctx, r.rest, &r.cache, r.ttl, endpoints, false)
	}
	if err := r.load(ctx); err != nil {
		// No list: each phone is asked (an error at once when ctx is over), as by the
		// controller before its first list.
		return endpointsOnline(ctx, r.rest, &r.cache, r.ttl, endpoints, false)
	}
	return endpointsOnline(ctx, r.rest, &r.cache, r.ttl, endpoints, true)
}

// load waits until the endpoint list is loaded anew (by this call or one before it) or ctx
// ends. The request is not the caller's: a call whose deadline passes leaves it running for
// the calls behind it (the REST timeout bounds it).
func (r *restPresence) load(ctx context.Context) error {
	loaded := r.flight.DoChan("endpoints", func() (any, error) {
		if time.Since(r.cache.loadedAt()) <= r.ttl { // loaded by the flight just before
			return nil, nil
		}
		at := time.Now()
		states, err := r.rest.endpointStates(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		r.cache.store(states, at)
		return nil, nil
	})
	select {
	case res := <-loaded:
		if res.Err != nil {
			return fmt.Errorf("list the endpoints: %w", res.Err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
