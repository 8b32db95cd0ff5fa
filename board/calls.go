// Package board is the head of sales' view of the PBX: the calls in progress, as the ARI
// controller and the call observer report them through one narrow interface (Calls), and
// today's figures per manager, tallied from the same call outcomes the CRM gets and kept
// per local day (Ledger). Subscribers (the page's event stream) hear of every change.
package board

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
)

// Calls is what the call sources (the Stasis controller, the call observer) tell the board,
// keyed by the call's linkedid, so that both may report the same call. Implementations
// never block: they run on the sources' event loops.
type Calls interface {
	// Ringing: the call rings the given phones (none yet: it is being routed or waits in
	// the fallback). A second Ringing of the same call adds phones and the routing.
	Ringing(id string, r Ring)
	// Answered: the phone picked up; the call is a conversation from now on.
	Answered(id, endpoint string)
	// Ended: the call is over (an unknown id is ignored).
	Ended(id string)
}

// Ring is what a call source knows about a call when a phone starts ringing.
type Ring struct {
	Direction routing.Direction
	Caller    string // the client's number (incoming), the manager's line (outgoing)
	Called    string
	// Decision is the routing the call got; zero for a call crmlink did not route.
	Decision  routing.Decision
	Endpoints []string // the phones ringing ("PJSIP/101")
}

// Person is a phone on a call, with its manager when it is one.
type Person struct {
	Manager  crm.UserID `json:"manager,omitempty"`
	Name     string     `json:"name,omitempty"`
	Endpoint string     `json:"endpoint"`
}

// Call is a call in progress as the page shows it. Caller and Contact come from outside
// (a caller id, an amoCRM card): whoever renders them escapes them.
type Call struct {
	ID        string            `json:"id"`
	Direction routing.Direction `json:"direction,omitempty"`
	Caller    string            `json:"caller"`
	Contact   string            `json:"contact,omitempty"`
	Called    string            `json:"called,omitempty"`
	// State is "routing" (no phone rings yet), "ringing" or "talking".
	State   string   `json:"state"`
	Ringing []Person `json:"ringing,omitempty"`
	Talking *Person  `json:"talking,omitempty"`
	// Result and Reason are the routing (CRMLINK_RESULT, CRMLINK_REASON); Owner the
	// client's manager when known.
	Result     routing.Result `json:"result,omitempty"`
	Reason     routing.Reason `json:"reason,omitempty"`
	Owner      *Person        `json:"owner,omitempty"`
	Since      time.Time      `json:"since"`
	StateSince time.Time      `json:"state_since"`
}

// States of a call in progress.
const (
	StateRouting = "routing"
	StateRinging = "ringing"
	StateTalking = "talking"
)

// Board holds the calls in progress; it implements Calls.
type Board struct {
	mu        sync.Mutex
	calls     map[string]*Call
	endpoints map[string]crm.UserID
	names     map[crm.UserID]string
	now       func() time.Time
	hub       *Hub
	// named remembers the contact names routing decisions found, by caller number, for
	// the calls the observer reports (FastAGI, SIP redirect): their decision never reaches
	// the board, the name the router found does.
	named map[string]namedAt
	// prunedAt is when named last lost its stale entries (at most once per nameMemory, so
	// a routing decision never walks the whole map).
	prunedAt time.Time
}

type namedAt struct {
	name string
	at   time.Time
}

// nameMemory is how long a decision's contact name waits for its call to ring.
const nameMemory = time.Minute

// NewBoard builds a board; endpoints map phones to managers, names managers to their names.
func NewBoard(endpoints map[string]crm.UserID, names map[crm.UserID]string, hub *Hub) *Board {
	return &Board{calls: map[string]*Call{}, endpoints: endpoints, names: names, now: time.Now, hub: hub, named: map[string]namedAt{}}
}

func (b *Board) person(endpoint string) Person {
	u := b.endpoints[endpoint]
	return Person{Manager: u, Name: b.names[u], Endpoint: endpoint}
}

// Decided keeps the contact name a routing decision found for a caller's number, for the
// call that rings next from that number (FastAGI and the SIP redirect decide, the
// observer sees the call ring). It never blocks.
func (b *Board) Decided(caller string, d routing.Decision) {
	if caller == "" || d.Client == nil || d.Client.ContactName == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if now.Sub(b.prunedAt) > nameMemory {
		for k, v := range b.named {
			if now.Sub(v.at) > nameMemory {
				delete(b.named, k)
			}
		}
		b.prunedAt = now
	}
	b.named[caller] = namedAt{d.Client.ContactName, now}
}

// Ringing implements Calls.
func (b *Board) Ringing(id string, r Ring) {
	b.mu.Lock()
	now := b.now()
	c := b.calls[id]
	if c == nil {
		c = &Call{ID: id, State: StateRouting, Since: now, StateSince: now}
		b.calls[id] = c
	}
	if r.Direction != "" {
		c.Direction = r.Direction
	}
	if c.Caller == "" {
		c.Caller = r.Caller
	}
	if c.Called == "" {
		c.Called = r.Called
	}
	if d := r.Decision; d.Result != "" {
		if c.Result != "" && c.Result != d.Result {
			// Routed, then to the fallback: the owner's phones stopped ringing.
			c.Ringing, c.State, c.StateSince = nil, StateRouting, now
		}
		c.Result, c.Reason = d.Result, d.Reason
		if d.Owner != 0 {
			c.Owner = &Person{Manager: d.Owner, Name: b.names[d.Owner]}
		}
		if d.Client != nil && d.Client.ContactName != "" {
			c.Contact = d.Client.ContactName
		}
	}
	if n, ok := b.named[c.Caller]; ok && c.Contact == "" && now.Sub(n.at) <= nameMemory {
		c.Contact = n.name
	}
	for _, ep := range r.Endpoints {
		if !slices.ContainsFunc(c.Ringing, func(p Person) bool { return p.Endpoint == ep }) {
			c.Ringing = append(c.Ringing, b.person(ep))
		}
	}
	if len(c.Ringing) > 0 && c.State == StateRouting {
		c.State, c.StateSince = StateRinging, now
	}
	b.mu.Unlock()
	b.hub.Notify()
}

// Answered implements Calls.
func (b *Board) Answered(id, endpoint string) {
	b.mu.Lock()
	c := b.calls[id]
	if c == nil || (c.Talking != nil && c.Talking.Endpoint == endpoint) {
		b.mu.Unlock()
		return
	}
	p := b.person(endpoint)
	c.Talking, c.Ringing = &p, nil
	c.State, c.StateSince = StateTalking, b.now()
	b.mu.Unlock()
	b.hub.Notify()
}

// Ended implements Calls.
func (b *Board) Ended(id string) {
	b.mu.Lock()
	_, known := b.calls[id]
	delete(b.calls, id)
	b.mu.Unlock()
	if known {
		b.hub.Notify()
	}
}

// Calls lists the calls in progress, oldest first.
func (b *Board) Calls() []Call {
	b.mu.Lock()
	out := make([]Call, 0, len(b.calls))
	for _, c := range b.calls {
		cp := *c
		cp.Ringing = slices.Clone(c.Ringing)
		out = append(out, cp)
	}
	b.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Hub tells subscribers that something on the board changed; a slow subscriber misses
// nothing but intermediate states (each signal means "read it again").
type Hub struct {
	mu   sync.Mutex
	subs map[chan struct{}]bool
}

// NewHub builds a hub with no subscribers.
func NewHub() *Hub { return &Hub{subs: map[chan struct{}]bool{}} }

// Subscribe returns a channel that receives a signal after changes, and the function
// that ends the subscription.
func (h *Hub) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	h.subs[ch] = true
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

// Notify signals every subscriber without blocking.
func (h *Hub) Notify() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
