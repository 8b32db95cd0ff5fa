package routing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// maxContactCandidates bounds how many contacts sharing one number have their leads read to
// find one with an open deal: their leads are read in one request, but each lead costs a
// place in its filter and each candidate the wait for the answer.
const maxContactCandidates = 3

// liveResult is the outcome of one live CRM lookup, shared by every caller waiting on it.
type liveResult struct {
	entry  Entry
	reason Reason // ReasonNone (found, owner or not), ReasonNotFound, ReasonTimeout, ReasonCRMError
	source Source // SourceCRM, or the cached entry's source when another lookup just stored it
	err    error
	failed string // the step that failed with err
	steps  []Step
}

// owner finds the caller's owner chain: from the cache when it holds a live entry, else
// from the CRM. A Reason other than ReasonNone ends the decision. Inquiries share live
// lookups among themselves only: a call never waits on a paced inquiry's lookup.
func (r *Router) owner(ctx context.Context, phone crm.Phone, inquiry bool, d *Decision, log callLog) (Entry, Source, Reason) {
	t0 := time.Now()
	e, ok, err := r.cacheGet(ctx, phone)
	switch {
	case err != nil && ctx.Err() != nil:
		d.Steps = append(d.Steps, Step{Name: "cache", Detail: "no answer before the deadline", Duration: time.Since(t0)})
		return Entry{}, SourceNone, ReasonTimeout
	case errors.Is(err, errCacheSkipped):
		// The guard logged the outage once; every call saying so again would flood the log.
		d.Steps = append(d.Steps, Step{Name: "cache", Detail: err.Error(), Duration: time.Since(t0)})
	case err != nil:
		// A broken cache costs a CRM request, not the call.
		log.Warn().Err(err).Msg("owner cache read failed, asking the CRM")
		d.Steps = append(d.Steps, Step{Name: "cache", Detail: "error: " + err.Error(), Duration: time.Since(t0)})
	case ok:
		e, src, stale := r.usable(e)
		if stale == "" {
			detail := "hit"
			if !e.Found {
				detail = "hit: no contact has this number"
			}
			d.Steps = append(d.Steps, Step{Name: "cache", Detail: detail, Duration: time.Since(t0)})
			return e, src, ReasonNone
		}
		d.Steps = append(d.Steps, Step{Name: "cache", Detail: stale, Duration: time.Since(t0)})
	default:
		d.Steps = append(d.Steps, Step{Name: "cache", Detail: "miss", Duration: time.Since(t0)})
	}

	t0 = time.Now()
	key := string(phone)
	if inquiry {
		key = "inquiry " + key
	}
	ch := r.flight.DoChan(key, func() (any, error) { return r.lookupLive(ctx, phone, inquiry, log), nil })
	select {
	case res := <-ch:
		lr := res.Val.(liveResult)
		d.Steps = append(d.Steps, lr.steps...)
		detail := string(lr.reason)
		if lr.reason == ReasonNone {
			detail = "found"
		}
		if lr.err != nil {
			detail += ": " + lr.err.Error()
		}
		if res.Shared {
			detail += " (lookup shared with concurrent calls)"
		}
		d.Steps = append(d.Steps, Step{Name: "crm", Detail: detail, Duration: time.Since(t0)})
		return lr.entry, lr.source, lr.reason
	case <-ctx.Done():
		d.Steps = append(d.Steps, Step{Name: "crm", Detail: "no answer before the deadline", Duration: time.Since(t0)})
		return Entry{}, SourceCRM, ReasonTimeout
	}
}

// usable says whether a cached entry can answer now; stale says why not. The owner is
// recomputed with this Router's precedence because the entry may have been written by
// another instance or under an older configuration.
func (r *Router) usable(e Entry) (_ Entry, _ Source, stale string) {
	if !r.now().Before(e.ExpiresAt) {
		return e, SourceNone, "expired"
	}
	owner, from, missing := e.resolve(r.precedence)
	if missing != "" {
		return e, SourceNone, "stale: the precedence needs the " + string(missing) + ", which was not read"
	}
	e.Owner, e.OwnerFrom = owner, from
	if e.Source == SourceIndex {
		return e, SourceIndex, ""
	}
	return e, SourceCache, ""
}

// cacheGet reads the owner cache on the call path. A shared cache is read through the
// guard: it never costs a call more than cacheWait, and nothing while it is down.
func (r *Router) cacheGet(ctx context.Context, phone crm.Phone) (Entry, bool, error) {
	if r.cacheLocal {
		return r.cache.Get(ctx, phone)
	}
	return r.guard.get(ctx, phone)
}

// lookupLive runs one CRM lookup on behalf of every concurrent caller for the number. It
// has its own deadline of one LookupTimeout and ignores the first caller's cancellation: if
// that caller hangs up, the others still get the answer and the cache is still filled. It
// returns at its deadline even when the Directory ignores the context, so a stuck CRM never
// holds the shared slot for the number.
func (r *Router) lookupLive(parent context.Context, phone crm.Phone, inquiry bool, log callLog) liveResult {
	base := context.WithoutCancel(parent)
	ctx, cancel := context.WithTimeout(base, r.lookup)
	defer cancel()
	r.writeMu.RLock()
	epoch := r.epoch.Load()
	r.writeMu.RUnlock()

	t0 := time.Now()
	readAt := r.now()
	// A lookup that finished just before this one started may have stored the answer after
	// our caller missed the cache; reading it again keeps "one number, one CRM request".
	if e, ok, err := r.cacheGet(ctx, phone); err == nil && ok {
		if e, src, stale := r.usable(e); stale == "" {
			return liveResult{entry: e, source: src, steps: []Step{{Name: "cache", Detail: "hit on second look", Duration: time.Since(t0)}}}
		}
	}
	dir := r.dir
	if inquiry {
		dir = r.inquiryDir
		if err := r.inquiries.Wait(ctx); err != nil {
			err = fmt.Errorf("cold lookups outside calls are limited to %d at once and one per %s: %w", inquiryBurst, inquiryEvery, err)
			return liveResult{reason: ReasonTimeout, source: SourceCRM, err: err, steps: []Step{{Name: "crm.lookup", Detail: "not asked: " + err.Error(), Duration: time.Since(t0)}}}
		}
	}
	res, err := await(ctx, func() liveResult { return r.resolveCRM(ctx, dir, phone, false) })
	res.source = SourceCRM
	if err != nil {
		return liveResult{reason: ReasonTimeout, source: SourceCRM, steps: []Step{{Name: "crm.lookup", Detail: "no answer within " + r.lookup.String(), Duration: time.Since(t0)}}}
	}
	if res.reason != ReasonNone && res.reason != ReasonNotFound {
		if res.reason == ReasonCRMError {
			log.Warn().Err(res.err).Str("phone", string(phone)).Msg("CRM lookup failed")
		}
		return res
	}

	now := r.now()
	ttl := r.cacheTTL
	if !res.entry.Found {
		ttl = r.negativeTTL
	}
	res.entry.Source = SourceCRM
	res.entry.ReadAt, res.entry.StoredAt = readAt, now
	res.entry.ExpiresAt = now.Add(ttl)
	sctx, scancel := context.WithTimeout(base, r.lookup)
	defer scancel()
	if err := r.storeLookup(sctx, res.entry, ttl, epoch); err != nil && !errors.Is(err, errCacheSkipped) {
		log.Warn().Err(err).Str("phone", string(phone)).Msg("owner cache write failed")
	}
	return res
}

// storeLookup caches a lookup unless a webhook touched the number or one of its entities
// after the lookup started: what the lookup read may predate that change.
func (r *Router) storeLookup(ctx context.Context, e Entry, ttl time.Duration, epoch uint64) error {
	r.writeMu.RLock()
	defer r.writeMu.RUnlock()
	if c, ok := r.changes[phoneMark(e.Phone)]; ok && c.epoch > epoch {
		return nil
	}
	for _, k := range e.Entities() {
		if c, ok := r.changes[k.String()]; ok && c.epoch > epoch {
			return nil
		}
	}
	if r.cacheLocal {
		return r.cache.Set(ctx, e, ttl)
	}
	return r.guard.set(ctx, e, ttl)
}

// resolver decides which contact, deal and owner a number means; the Router and the call
// scenarios (through ResolveClient) both use it, so they cannot disagree.
type resolver struct {
	region     string
	precedence []crm.EntityType
}

// newResolver fills the defaults: DefaultRegion, DefaultPrecedence.
func newResolver(region string, precedence []crm.EntityType) resolver {
	rs := resolver{region: strings.ToUpper(strings.TrimSpace(region)), precedence: slices.Clone(precedence)}
	if rs.region == "" {
		rs.region = DefaultRegion
	}
	if len(rs.precedence) == 0 {
		for _, p := range DefaultPrecedence {
			rs.precedence = append(rs.precedence, crm.EntityType(p))
		}
	}
	return rs
}

// resolveCRM walks the CRM: contacts with the number, the one to use, then only the links
// the precedence needs, in its order, until one has a responsible user. withDeals reads the
// contact's leads even when the precedence does not get to them: the call scenarios need
// the open deal whoever the owner is.
func (r resolver) resolveCRM(ctx context.Context, dir crm.Directory, phone crm.Phone, withDeals bool) liveResult {
	var steps []Step
	fail := func(step string, t0 time.Time, err error) liveResult {
		steps = append(steps, Step{Name: step, Detail: "error: " + err.Error(), Duration: time.Since(t0)})
		return liveResult{reason: classify(ctx, err), err: err, failed: step, steps: steps}
	}

	t0 := time.Now()
	searchCtx, tally := crm.WithSearchTally(ctx)
	contacts, err := dir.FindContactsByPhone(searchCtx, phone)
	if err != nil && !errors.Is(err, crm.ErrNotFound) {
		return fail("crm.find_contacts", t0, err)
	}
	verified := r.verified(contacts, phone)
	returned, ok := tally.Returned()
	if !ok {
		returned = len(contacts)
	}
	steps = append(steps, Step{Name: "crm.find_contacts", Detail: fmt.Sprintf("search returned %d, %d with this number", returned, len(verified)), Duration: time.Since(t0)})
	if len(verified) == 0 {
		return liveResult{entry: Entry{Phone: phone}, reason: ReasonNotFound, steps: steps}
	}
	return r.resolveContacts(ctx, dir, phone, verified, withDeals, steps)
}

// resolveContacts resolves the client among contacts known to be theirs (found by the
// number, or by a chat visitor's email or custom field): the contact to use, then only the
// links the precedence needs, in its order, until one has a responsible user.
func (r resolver) resolveContacts(ctx context.Context, dir crm.Directory, phone crm.Phone, verified []crm.Contact, withDeals bool, steps []Step) liveResult {
	fail := func(step string, t0 time.Time, err error) liveResult {
		steps = append(steps, Step{Name: step, Detail: "error: " + err.Error(), Duration: time.Since(t0)})
		return liveResult{reason: classify(ctx, err), err: err, failed: step, steps: steps}
	}
	var t0 time.Time
	e := Entry{Phone: phone, Found: true}
	var contact crm.Contact
	if len(verified) == 1 {
		contact = verified[0]
	} else {
		t0 = time.Now()
		c, leads, err := r.chooseContact(ctx, dir, verified)
		if err != nil {
			return fail("crm.leads", t0, err)
		}
		contact = c
		e.LeadsKnown, e.Leads = true, leadRefs(leads)
		steps = append(steps, Step{Name: "crm.leads", Detail: fmt.Sprintf("chose contact %d of %d sharing the number", c.ID, len(verified)), Duration: time.Since(t0)})
	}
	e.ContactID, e.ContactResponsible, e.CompanyID = contact.ID, contact.Responsible, contact.CompanyID
	e.ContactName = contact.Name

	for {
		owner, from, missing := e.resolve(r.precedence)
		if missing == "" && withDeals && !e.LeadsKnown {
			missing = crm.EntityLead
		}
		switch missing {
		case "":
			e.Owner, e.OwnerFrom = owner, from
			return liveResult{entry: e, steps: steps}
		case crm.EntityLead:
			t0 = time.Now()
			leads, err := r.leads(ctx, dir, contact.LeadIDs)
			if err != nil {
				return fail("crm.leads", t0, err)
			}
			e.LeadsKnown, e.Leads = true, leadRefs(leads)
			detail := fmt.Sprintf("contact %d: %d leads", e.ContactID, len(leads))
			if len(contact.LeadIDs) == 0 {
				detail = fmt.Sprintf("contact %d: no leads linked, nothing to read", e.ContactID)
			}
			steps = append(steps, Step{Name: "crm.leads", Detail: detail, Duration: time.Since(t0)})
		case crm.EntityCompany:
			t0 = time.Now()
			co, err := dir.Company(ctx, e.CompanyID)
			switch {
			case errors.Is(err, crm.ErrNotFound):
				// A deleted company has no responsible; the precedence moves on.
			case err != nil:
				return fail("crm.company", t0, err)
			default:
				e.CompanyResponsible = co.Responsible
			}
			e.CompanyKnown = true
			steps = append(steps, Step{Name: "crm.company", Detail: fmt.Sprintf("company %d", e.CompanyID), Duration: time.Since(t0)})
		}
	}
}

// verified keeps the contacts whose card holds the number. CRM phone search is free-text
// (amoCRM matches digits anywhere), so a hit is confirmed against the card's phones; a
// contact returned without phones cannot be disproved and is kept.
func (r resolver) verified(contacts []crm.Contact, phone crm.Phone) []crm.Contact {
	var out []crm.Contact
	for _, c := range contacts {
		if len(c.Phones) == 0 || slices.ContainsFunc(c.Phones, func(w string) bool { return phone.SameNumber(w, r.region) }) {
			out = append(out, c)
		}
	}
	return out
}

// leads reads leads by the ids the contact search returned with the contacts, so a contact
// is never read a second time for them, and a contact without leads costs no request.
func (r resolver) leads(ctx context.Context, dir crm.Directory, ids []int64) ([]crm.Lead, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	leads, err := dir.Leads(ctx, ids)
	if err != nil && !errors.Is(err, crm.ErrNotFound) {
		return nil, err
	}
	return leads, nil
}

// chooseContact picks among contacts sharing a number: the most recently updated one that
// has an open lead, else the most recently updated one. Only the maxContactCandidates most
// recently updated are examined, their leads read together in one request: one wait on
// call setup and one request from the account's budget, whatever the number of candidates.
func (r resolver) chooseContact(ctx context.Context, dir crm.Directory, contacts []crm.Contact) (crm.Contact, []crm.Lead, error) {
	cands := slices.Clone(contacts)
	slices.SortStableFunc(cands, func(a, b crm.Contact) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if len(cands) > maxContactCandidates {
		cands = cands[:maxContactCandidates]
	}
	var ids []int64
	for _, c := range cands {
		ids = append(ids, c.LeadIDs...)
	}
	slices.Sort(ids)
	all, err := r.leads(ctx, dir, slices.Compact(ids))
	if err != nil {
		return crm.Contact{}, nil, err
	}
	byID := make(map[int64]crm.Lead, len(all))
	for _, l := range all {
		byID[l.ID] = l
	}
	// A lead may be linked to several of the contacts; each gets its own.
	leadsOf := func(c crm.Contact) []crm.Lead {
		var out []crm.Lead
		for _, id := range c.LeadIDs {
			if l, ok := byID[id]; ok {
				out = append(out, l)
			}
		}
		return out
	}
	for _, c := range cands {
		if ls := leadsOf(c); slices.ContainsFunc(ls, crm.Lead.Open) {
			return c, ls, nil
		}
	}
	return cands[0], leadsOf(cands[0]), nil
}

// classify maps a CRM error to a reason: anything that is the clock running out is a
// timeout, the rest (401, 403, 429, 5xx, garbage) is crm_error.
func classify(ctx context.Context, err error) Reason {
	var ne net.Error
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return ReasonTimeout
	}
	return ReasonCRMError
}
