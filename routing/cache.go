package routing

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// OwnerCache remembers how a caller's number resolved to an owner, and which CRM entities
// that answer depends on, so that a webhook about one of them can correct the answer in
// place instead of waiting out the TTL (the CoMagic cache this replaces kept a stale owner
// for up to 6 hours).
//
// Implementations must be safe for concurrent use. The Router checks Entry.ExpiresAt itself;
// the ttl given to Set is for the store's own garbage collection. Index links may outlive
// the entry they point to: readers check that the entry still names the entity.
type OwnerCache interface {
	// Get returns the entry for the phone; ok is false when there is none.
	Get(ctx context.Context, phone crm.Phone) (e Entry, ok bool, err error)
	// Set stores the entry under e.Phone and links each of e.Entities() to the phone,
	// both for ttl.
	Set(ctx context.Context, e Entry, ttl time.Duration) error
	// Delete drops the entry for the phone.
	Delete(ctx context.Context, phone crm.Phone) error
	// Phones returns the phones linked to the entity (possibly stale, never authoritative).
	Phones(ctx context.Context, key EntityKey) ([]crm.Phone, error)
	// Unlink drops the entity's links.
	Unlink(ctx context.Context, key EntityKey) error
}

// EntityKey names one CRM entity an owner can come from: lead:ID, contact:ID, company:ID.
type EntityKey struct {
	Type crm.EntityType
	ID   int64
}

// String renders the key as "lead:123", the form used in Redis keys and logs.
func (k EntityKey) String() string { return string(k.Type) + ":" + strconv.FormatInt(k.ID, 10) }

func validEntity(t crm.EntityType) bool {
	return t == crm.EntityLead || t == crm.EntityContact || t == crm.EntityCompany
}

// LeadRef is what the owner chain needs of a lead.
type LeadRef struct {
	ID          int64      `json:"id"`
	Responsible crm.UserID `json:"responsible,omitempty"`
	UpdatedAt   time.Time  `json:"updated_at"`
	Open        bool       `json:"open"`
}

// maxClosedLeads bounds how many closed leads an entry keeps. They are kept at all only so
// that a reopened lead can be applied from its webhook without a CRM request; old closed
// deals are rarely reopened, and an unknown reopened lead just waits for the TTL.
const maxClosedLeads = 20

// Entry is one cached resolution: the caller's number, the chain of CRM entities it led to
// with each one's responsible user, and the owner chosen from them. Keeping the chain, not
// only the owner, is what lets a webhook change one link and recompute the owner locally.
type Entry struct {
	Phone crm.Phone `json:"phone"`
	// Found is false for a remembered "no contact has this number" (negative entry).
	Found              bool       `json:"found"`
	ContactID          int64      `json:"contact_id,omitempty"`
	ContactResponsible crm.UserID `json:"contact_responsible,omitempty"`
	// ContactName is the contact's name as the CRM has it, for the live view (empty in
	// entries stored before it was kept).
	ContactName        string     `json:"contact_name,omitempty"`
	CompanyID          int64      `json:"company_id,omitempty"`
	CompanyResponsible crm.UserID `json:"company_responsible,omitempty"`
	// CompanyKnown and LeadsKnown say whether the lookup read those links. It reads them
	// only when the precedence gets to them, to spend as few CRM requests as possible; an
	// owner that would need an unread link cannot be recomputed and the entry is dropped.
	CompanyKnown bool      `json:"company_known,omitempty"`
	LeadsKnown   bool      `json:"leads_known,omitempty"`
	Leads        []LeadRef `json:"leads,omitempty"`
	// Owner is the responsible user chosen by the precedence; zero means nobody.
	Owner     crm.UserID     `json:"owner,omitempty"`
	OwnerFrom crm.EntityType `json:"owner_from,omitempty"`
	// Source is SourceCRM for a live lookup, SourceIndex once a webhook set or corrected it.
	Source Source `json:"source"`
	// ReadAt is when the live lookup that read the chain from the CRM began; webhooks
	// correct the chain without moving it.
	ReadAt    time.Time `json:"read_at,omitempty"`
	StoredAt  time.Time `json:"stored_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Entities lists the CRM entities the entry depends on, the ones a webhook may change.
func (e *Entry) Entities() []EntityKey {
	if !e.Found {
		return nil
	}
	keys := make([]EntityKey, 0, 2+len(e.Leads))
	if e.ContactID != 0 {
		keys = append(keys, EntityKey{crm.EntityContact, e.ContactID})
	}
	if e.CompanyID != 0 {
		keys = append(keys, EntityKey{crm.EntityCompany, e.CompanyID})
	}
	for _, l := range e.Leads {
		keys = append(keys, EntityKey{crm.EntityLead, l.ID})
	}
	return keys
}

// refers reports whether the entry still depends on the entity (index links may be stale).
func (e *Entry) refers(k EntityKey) bool {
	return slices.Contains(e.Entities(), k)
}

// resolve picks the owner by precedence: the responsible of the most recently updated open
// lead, of the contact, of the contact's company, the first one that is set. missing names
// the link the precedence reached but the lookup did not read (the answer cannot be known
// without asking the CRM); it is empty when the answer is complete, owner zero included.
func (e *Entry) resolve(precedence []crm.EntityType) (owner crm.UserID, from, missing crm.EntityType) {
	if !e.Found {
		return 0, "", ""
	}
	for _, p := range precedence {
		switch p {
		case crm.EntityLead:
			if !e.LeadsKnown {
				return 0, "", crm.EntityLead
			}
			if l, ok := latestOpenLead(e.Leads); ok {
				return l.Responsible, crm.EntityLead, ""
			}
		case crm.EntityContact:
			if e.ContactResponsible != 0 {
				return e.ContactResponsible, crm.EntityContact, ""
			}
		case crm.EntityCompany:
			if e.CompanyID == 0 {
				continue
			}
			if !e.CompanyKnown {
				return 0, "", crm.EntityCompany
			}
			if e.CompanyResponsible != 0 {
				return e.CompanyResponsible, crm.EntityCompany, ""
			}
		}
	}
	return 0, "", ""
}

// latestOpenLead is the open lead with a responsible that was updated last; on equal times
// the higher (newer) id wins so the choice does not depend on the order the CRM listed them.
func latestOpenLead(leads []LeadRef) (LeadRef, bool) {
	var best LeadRef
	found := false
	for _, l := range leads {
		if !l.Open || l.Responsible == 0 {
			continue
		}
		if !found || l.UpdatedAt.After(best.UpdatedAt) || (l.UpdatedAt.Equal(best.UpdatedAt) && l.ID > best.ID) {
			best, found = l, true
		}
	}
	return best, found
}

// leadRefs keeps every open lead and the most recently updated closed ones.
func leadRefs(leads []crm.Lead) []LeadRef {
	refs := make([]LeadRef, 0, len(leads))
	var closed []LeadRef
	for _, l := range leads {
		r := LeadRef{ID: l.ID, Responsible: l.Responsible, UpdatedAt: l.UpdatedAt, Open: l.Open()}
		if r.Open {
			refs = append(refs, r)
		} else {
			closed = append(closed, r)
		}
	}
	slices.SortFunc(closed, func(a, b LeadRef) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if len(closed) > maxClosedLeads {
		closed = closed[:maxClosedLeads]
	}
	return append(refs, closed...)
}

// openDeal is the deal a call's records go on: the most recently updated open lead,
// whoever is responsible for it; on equal times the higher id.
func openDeal(leads []LeadRef) (LeadRef, bool) {
	var best LeadRef
	found := false
	for _, l := range leads {
		if !l.Open {
			continue
		}
		if !found || l.UpdatedAt.After(best.UpdatedAt) || (l.UpdatedAt.Equal(best.UpdatedAt) && l.ID > best.ID) {
			best, found = l, true
		}
	}
	return best, found
}
