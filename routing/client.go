package routing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// Client is what one resolution of a caller's number found: the contact and the open deal
// a call's CRM records go on, and the owner. It is decided here once, for routing and the
// call scenarios alike, and travels with the Decision through the event queue so that the
// scenarios need not ask the CRM again.
type Client struct {
	// Known: a contact has the number.
	Known              bool       `json:"known"`
	ContactID          int64      `json:"contact_id,omitempty"`
	ContactResponsible crm.UserID `json:"contact_responsible,omitempty"`
	// ContactName is the contact's name, for the live view; it comes from a caller's CRM
	// card, so whatever shows it escapes it.
	ContactName string `json:"contact_name,omitempty"`
	// DealsKnown: the lookup read the contact's leads (the precedence may stop before them),
	// so DealID is the answer (0: no open deal) and not a gap.
	DealsKnown bool `json:"deals_known,omitempty"`
	// DealID is the contact's most recently updated open deal.
	DealID    int64          `json:"deal_id,omitempty"`
	Owner     crm.UserID     `json:"owner,omitempty"`
	OwnerFrom crm.EntityType `json:"owner_from,omitempty"`
	// At is when the resolution was read from the CRM or last corrected by a webhook (the
	// cache entry's StoredAt): the stamp ResolveClient compares to tell whether it still holds.
	At time.Time `json:"at"`
	// ReadAt is when the CRM lookup behind it began: records created for the client after
	// that (the call scenarios' own contacts and deals, which no webhook reports to the
	// cache) are not in it.
	ReadAt time.Time `json:"read_at"`
}

// client is the entry seen as a Client.
func (e *Entry) client() Client {
	c := Client{Known: e.Found, At: e.StoredAt, ReadAt: e.ReadAt}
	if !e.Found {
		return c
	}
	c.ContactID, c.ContactResponsible, c.ContactName = e.ContactID, e.ContactResponsible, e.ContactName
	c.Owner, c.OwnerFrom = e.Owner, e.OwnerFrom
	c.DealsKnown = e.LeadsKnown
	if d, ok := openDeal(e.Leads); ok && e.LeadsKnown {
		c.DealID = d.ID
	}
	return c
}

// complete reports whether the scenarios can take the Client as it is: an unknown number,
// or a contact whose deals were read.
func (c Client) complete() bool { return !c.Known || c.DealsKnown }

// ClientResolver answers, for the call scenarios, which contact and deal a client number
// means: the routing decision's answer while no webhook has touched it since, else a live
// CRM lookup.
type ClientResolver interface {
	// ResolveClient returns seen when it still holds, else asks the CRM; seen may be nil.
	// fromDecision tells which of the two the answer is.
	ResolveClient(ctx context.Context, phone crm.Phone, seen *Client) (c Client, fromDecision bool, err error)
}

var _ ClientResolver = (*Router)(nil)

// ResolveClient takes seen (from the call's routing decision) while the owner cache holds
// the very entry it came from: a webhook about the contact, its deals or company rewrites
// the entry (a new StoredAt) or drops it, and an expired entry proves nothing. Otherwise it
// resolves the number live through the InquiryDirectory (never the requests kept for
// calls), reading the deals whatever the precedence needs, without touching the cache (a
// write path must not race the webhooks that correct it).
func (r *Router) ResolveClient(ctx context.Context, phone crm.Phone, seen *Client) (Client, bool, error) {
	if seen != nil && seen.complete() && !seen.At.IsZero() {
		e, ok, err := r.cacheGet(ctx, phone)
		if err == nil && ok && r.now().Before(e.ExpiresAt) && e.StoredAt.Equal(seen.At) {
			return *seen, true, nil
		}
	}
	if r.inquiryDir == nil {
		return Client{}, false, fmt.Errorf("resolve client %s: no CRM is configured", phone)
	}
	c, err := r.resolver.live(ctx, r.inquiryDir, phone)
	return c, false, err
}

// LiveResolver resolves client numbers with a CRM lookup every time, with the same
// precedence rules as a Router: for call scenarios run without one (tests, tools).
func LiveResolver(dir crm.Directory, region string) ClientResolver {
	return liveResolver{dir: dir, res: newResolver(region, nil)}
}

type liveResolver struct {
	dir crm.Directory
	res resolver
}

func (l liveResolver) ResolveClient(ctx context.Context, phone crm.Phone, _ *Client) (Client, bool, error) {
	c, err := l.res.live(ctx, l.dir, phone)
	return c, false, err
}

// live resolves the number in the CRM, deals included.
func (rs resolver) live(ctx context.Context, dir crm.Directory, phone crm.Phone) (Client, error) {
	res := rs.resolveCRM(ctx, dir, phone, true)
	if res.reason != ReasonNone && res.reason != ReasonNotFound {
		what := map[string]string{"crm.find_contacts": "find contacts", "crm.leads": "leads", "crm.company": "company"}[res.failed]
		return Client{}, fmt.Errorf("%s of %s: %w", cmp.Or(what, "resolve client"), phone, res.err)
	}
	return res.entry.client(), nil
}

// ClientChooser answers which client contacts found by other means than a call's number
// (a chat visitor's phone, email or custom field) are: the contact, its open deal and the
// owner, by the precedence rules routing uses for a caller, so a chat and a call from one
// client land on the same card.
type ClientChooser interface {
	// ChooseClient resolves the client among contacts (all found for one visitor); an
	// empty list is an unknown client.
	ChooseClient(ctx context.Context, contacts []crm.Contact) (Client, error)
}

var _ ClientChooser = (*Router)(nil)

// ChooseClient resolves through the InquiryDirectory (never the requests kept for calls),
// with the Router's precedence.
func (r *Router) ChooseClient(ctx context.Context, contacts []crm.Contact) (Client, error) {
	if r.inquiryDir == nil {
		return Client{}, errors.New("choose client: no CRM is configured")
	}
	return r.resolver.choose(ctx, r.inquiryDir, contacts)
}

// LiveChooser chooses clients with the default precedence: for chat intake run without a
// Router (tests, tools).
func LiveChooser(dir crm.Directory) ClientChooser {
	return liveResolver{dir: dir, res: newResolver("", nil)}
}

func (l liveResolver) ChooseClient(ctx context.Context, contacts []crm.Contact) (Client, error) {
	return l.res.choose(ctx, l.dir, contacts)
}

// choose resolves the client among contacts, deals included.
func (rs resolver) choose(ctx context.Context, dir crm.Directory, contacts []crm.Contact) (Client, error) {
	if len(contacts) == 0 {
		return Client{}, nil
	}
	res := rs.resolveContacts(ctx, dir, "", contacts, true, nil)
	if res.reason != ReasonNone {
		what := map[string]string{"crm.leads": "leads", "crm.company": "company"}[res.failed]
		return Client{}, fmt.Errorf("choose client among %d contacts: %s: %w", len(contacts), cmp.Or(what, "resolve"), res.err)
	}
	return res.entry.client(), nil
}
