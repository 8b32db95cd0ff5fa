package sandbox

import (
	"maps"
	"slices"
	"time"
)

// store is the account's data. It is not locked itself: the Server holds its mutex around
// every use. Creations take ids from nextID and are remembered in order, so tests can read
// back what a client wrote (Created).
type store struct {
	users     map[int64]*User
	contacts  map[int64]*Contact
	companies map[int64]*Company
	leads     map[int64]*Lead
	tasks     map[int64]*Task
	notes     map[int64]*Note
	// unsorted holds every Unsorted entry by uid, decided ones too (with their status).
	unsorted map[string]*Unsorted
	// fieldIDs numbers the free text fields by name, the way an account numbers its fields.
	fieldIDs map[string]int64
	// tagIDs numbers lead tags by name as they first appear.
	tagIDs map[string]int64
	// callEvents are the incoming-call cards asked for, in order.
	callEvents []CallEvent
	lastID     int64
	uidSeq     int64
	// created lists the ids of what the API created, in order.
	created createdOrder
}

type createdOrder struct {
	contacts, leads, tasks, notes []int64
	unsorted                      []string
}

const (
	phoneFieldID   = 100001
	phoneEnumID    = 200001
	firstTextField = 100101
	emailFieldID   = 100002
	emailEnumID    = 200011
	firstTagID     = 300001
)

// newStore copies the seed's data, links contacts and leads both ways and stamps missing
// times with now. The seed is expected to be valid; anything dangling is dropped.
func newStore(s Seed, now time.Time) *store {
	st := &store{
		users:     map[int64]*User{},
		contacts:  map[int64]*Contact{},
		companies: map[int64]*Company{},
		leads:     map[int64]*Lead{},
		tasks:     map[int64]*Task{},
		notes:     map[int64]*Note{},
		unsorted:  map[string]*Unsorted{},
		fieldIDs:  map[string]int64{},
		tagIDs:    map[string]int64{},
	}
	ts := now.Unix()
	stamp := func(c, u *int64) {
		if *c == 0 {
			*c = ts
		}
		if *u == 0 {
			*u = *c
		}
	}
	for _, u := range s.Users {
		st.users[u.ID] = &u
		st.bump(u.ID)
	}
	for _, c := range s.Companies {
		stamp(&c.CreatedAt, &c.UpdatedAt)
		st.companies[c.ID] = &c
		st.bump(c.ID)
	}
	for _, l := range s.Leads {
		stamp(&l.CreatedAt, &l.UpdatedAt)
		l.ContactIDs = nil
		l.Tags = slices.Clone(l.Tags)
		st.tagLead(&l)
		st.leads[l.ID] = &l
		st.bump(l.ID)
	}
	var names []string
	for _, c := range s.Contacts {
		stamp(&c.CreatedAt, &c.UpdatedAt)
		c.Phones = slices.Clone(c.Phones)
		c.Emails = slices.Clone(c.Emails)
		c.Fields = maps.Clone(c.Fields)
		c.LeadIDs = nil
		if st.companies[c.CompanyID] == nil {
			c.CompanyID = 0
		}
		st.contacts[c.ID] = &c
		st.bump(c.ID)
		names = append(names, slices.Collect(maps.Keys(c.Fields))...)
	}
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		st.fieldIDs[n] = firstTextField + int64(len(st.fieldIDs))
	}
	for _, c := range s.Contacts {
		for _, l := range c.LeadIDs {
			st.link(c.ID, l)
		}
	}
	for _, l := range s.Leads {
		for _, c := range l.ContactIDs {
			st.link(c, l.ID)
		}
	}
	return st
}

func (st *store) bump(id int64) { st.lastID = max(st.lastID, id) }

// nextID hands out the id of a new entity; ids are unique across entity kinds, as in amoCRM.
func (st *store) nextID() int64 {
	st.lastID++
	return st.lastID
}

// link ties a contact and a lead, once, both ways.
func (st *store) link(contactID, leadID int64) {
	c, l := st.contacts[contactID], st.leads[leadID]
	if c == nil || l == nil || slices.Contains(c.LeadIDs, leadID) {
		return
	}
	c.LeadIDs = append(c.LeadIDs, leadID)
	l.ContactIDs = append(l.ContactIDs, contactID)
}

// snapshot returns the data as a seed (settings left empty), sorted by id.
func (st *store) snapshot() Seed {
	s := Seed{
		Users:     sortedCopy(st.users, func(u User) User { return u }),
		Companies: sortedCopy(st.companies, func(c Company) Company { return c }),
		Contacts: sortedCopy(st.contacts, func(c Contact) Contact {
			return cloneContact(c)
		}),
		Leads: sortedCopy(st.leads, func(l Lead) Lead {
			return cloneLead(l)
		}),
	}
	return s
}

func cloneContact(c Contact) Contact {
	c.Phones, c.Emails, c.Fields, c.LeadIDs = slices.Clone(c.Phones), slices.Clone(c.Emails), maps.Clone(c.Fields), slices.Clone(c.LeadIDs)
	return c
}

func cloneLead(l Lead) Lead {
	l.ContactIDs, l.Tags = slices.Clone(l.ContactIDs), slices.Clone(l.Tags)
	return l
}

// tagLead numbers the lead's tags not seen before.
func (st *store) tagLead(l *Lead) {
	for _, t := range l.Tags {
		if _, ok := st.tagIDs[t]; !ok {
			st.tagIDs[t] = st.nextTagID()
		}
	}
}

func (st *store) nextTagID() int64 { return firstTagID + int64(len(st.tagIDs)) }

func sortedCopy[T any](m map[int64]*T, clone func(T) T) []T {
	keys := slices.Sorted(maps.Keys(m))
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		out = append(out, clone(*m[k]))
	}
	return out
}

// sortedIDs lists a map's keys in id order, the order list endpoints answer in.
func sortedIDs[T any](m map[int64]*T) []int64 {
	return slices.Sorted(maps.Keys(m))
}
