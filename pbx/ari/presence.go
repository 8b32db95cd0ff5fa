package ari

import (
	"context"
	"strings"
	"sync"
	"time"
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
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.states == nil || now.Sub(p.at) > maxAge {
		return false
	}
	state, ok := p.states[endpoint]
	return ok && state != "offline"
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
// endpoint state. Dial strings that are not a single endpoint (a mobile through a trunk,
// PJSIP/79161234567@trunk) cannot be checked and count as online.
//
// An endpoint the last refresh (at most a few reconcile intervals ago) saw online is taken
// as online without asking; any other is asked about, so a phone that has just registered
// rings at once. A phone that went offline since the refresh is still tried: Asterisk
// refuses its leg at once, the call goes to the fallback as owner_unavailable, and the
// phone is asked about on the next call.
func (c *Controller) EndpointsOnline(ctx context.Context, endpoints []string) ([]bool, error) {
	out := make([]bool, len(endpoints))
	var firstErr error
	now := time.Now()
	for i, e := range endpoints {
		tech, res, ok := strings.Cut(e, "/")
		if !ok || strings.Contains(res, "@") {
			out[i] = true
			continue
		}
		if c.presence.online(e, now, c.presenceMaxAge()) {
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

// presenceMaxAge is how long a refreshed endpoint list is trusted: a refresh or two may
// fail or be late.
func (c *Controller) presenceMaxAge() time.Duration { return 3 * c.opts.ReconcileInterval }
