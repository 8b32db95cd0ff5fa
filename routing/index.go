package routing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// The owner index: CRM webhooks correct cached owners in place, so the next call for the
// number is routed to the new owner with no CRM request (Source index). This is the point
// of keeping the whole resolution chain in the cache rather than just the owner.

// ApplyResponsibleChange sets the new responsible user on that entity in every cached chain
// that holds it, recomputes each owner with the precedence and stores the entry as index
// with a fresh CacheTTL. An entity no cached number depends on needs nothing: the next call
// for its numbers does a live lookup anyway.
func (r *Router) ApplyResponsibleChange(ctx context.Context, ch crm.ResponsibleChange) error {
	if !validEntity(ch.Entity) || ch.ID <= 0 {
		return fmt.Errorf("routing: responsible change for %s %d: want a lead, contact or company with a positive id", ch.Entity, ch.ID)
	}
	key := EntityKey{Type: ch.Entity, ID: ch.ID}
	return r.update(ctx, key, func(e *Entry) bool {
		switch ch.Entity {
		case crm.EntityLead:
			for i := range e.Leads {
				if l := &e.Leads[i]; l.ID == ch.ID {
					l.Responsible = ch.Responsible
					// The CRM bumps updated_at on the change; follow it so the index picks
					// the same "most recently updated open lead" a live lookup would.
					if ch.At.After(l.UpdatedAt) {
						l.UpdatedAt = ch.At
					}
					return true
				}
			}
		case crm.EntityContact:
			if e.ContactID == ch.ID {
				e.ContactResponsible = ch.Responsible
				return true
			}
		case crm.EntityCompany:
			if e.CompanyID == ch.ID {
				e.CompanyResponsible, e.CompanyKnown = ch.Responsible, true
				return true
			}
		}
		return false
	})
}

// ApplyLeadStatus follows a lead's move to another status: won or lost closes it (it no
// longer gives the owner), any other status opens it. The lead counts as just updated, as
// it does in the CRM, which matters for "the most recently updated open lead".
func (r *Router) ApplyLeadStatus(ctx context.Context, leadID, statusID int64) error {
	if leadID <= 0 {
		return fmt.Errorf("routing: lead status change for lead %d: want a positive id", leadID)
	}
	open := crm.Lead{StatusID: statusID}.Open()
	now := r.now()
	return r.update(ctx, EntityKey{Type: crm.EntityLead, ID: leadID}, func(e *Entry) bool {
		for i := range e.Leads {
			if l := &e.Leads[i]; l.ID == leadID {
				l.Open = open
				if now.After(l.UpdatedAt) {
					l.UpdatedAt = now
				}
				return true
			}
		}
		return false
	})
}

// ForgetPhone drops what is cached for a number, for changes the index cannot apply (a
// phone added to or removed from a card); the next call does a live lookup.
func (r *Router) ForgetPhone(ctx context.Context, phone crm.Phone) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.markLocked(phoneMark(phone))
	if err := r.cache.Delete(ctx, phone); err != nil {
		return fmt.Errorf("routing: forget %s: %w", phone, err)
	}
	return nil
}

// ForgetEntity drops every cached number that depends on the entity, for changes the index
// cannot apply (a lead linked to another contact, a contact merged or deleted).
func (r *Router) ForgetEntity(ctx context.Context, typ crm.EntityType, id int64) error {
	if !validEntity(typ) || id <= 0 {
		return fmt.Errorf("routing: forget %s %d: want a lead, contact or company with a positive id", typ, id)
	}
	key := EntityKey{Type: typ, ID: id}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.markLocked(key.String())
	phones, err := r.cache.Phones(ctx, key)
	if err != nil {
		return fmt.Errorf("routing: forget %s: %w", key, err)
	}
	var errs []error
	for _, p := range phones {
		if err := r.cache.Delete(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := r.cache.Unlink(ctx, key); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("routing: forget %s: %w", key, err)
	}
	return nil
}

// update applies a change to every live cached entry linked to the entity. apply reports
// whether the entry held the entity (links can be stale). An owner that can no longer be
// computed from what is cached (the precedence now needs a link that was never read) drops
// the entry instead.
func (r *Router) update(ctx context.Context, key EntityKey, apply func(*Entry) bool) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.markLocked(key.String())
	phones, err := r.cache.Phones(ctx, key)
	if err != nil {
		return fmt.Errorf("routing: apply change to %s: %w", key, err)
	}
	now := r.now()
	var errs []error
	for _, p := range phones {
		e, ok, err := r.cache.Get(ctx, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok || !now.Before(e.ExpiresAt) || !e.refers(key) || !apply(&e) {
			continue
		}
		owner, from, missing := e.resolve(r.precedence)
		if missing != "" {
			if err := r.cache.Delete(ctx, p); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		e.Owner, e.OwnerFrom, e.Source = owner, from, SourceIndex
		// StoredAt always moves: it is the stamp that tells a routing decision's Client
		// (ResolveClient) that a webhook touched the client since, even on a coarse clock.
		e.StoredAt, e.ExpiresAt = later(now, e.StoredAt), now.Add(r.cacheTTL)
		if err := r.cache.Set(ctx, e, r.cacheTTL); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("routing: apply change to %s: %w", key, err)
	}
	return nil
}

// markLocked records a change so that lookups already running do not cache what they read
// before it. Marks older than two lookup timeouts are pruned: no lookup that started before
// them can still store (a lookup stores within its own deadline of one LookupTimeout plus a
// cache write of at most another).
func (r *Router) markLocked(key string) {
	now := time.Now()
	for k, c := range r.changes {
		if now.Sub(c.at) > 2*r.lookup {
			delete(r.changes, k)
		}
	}
	r.changes[key] = change{epoch: r.epoch.Add(1), at: now}
}

func phoneMark(p crm.Phone) string { return "phone:" + string(p) }

// later is now, or just after prev when the clock has not moved past it.
func later(now, prev time.Time) time.Time {
	if now.After(prev) {
		return now
	}
	return prev.Add(time.Microsecond)
}
