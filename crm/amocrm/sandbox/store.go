package sandbox

import (
	"maps"
	"slices"
	"time"
)

// store is the account's data. It is not locked itself: the Server holds its mutex around
// every use. Creations (contacts, leads, tasks, notes, unsorted) take ids from nextID and
// are also appended to created, so tests can read back what a client wrote.
type store struct {
	users     map[int64]*User
	contacts  map[int64]*Contact
	companies map[int64]*Company
	leads     map[int64]*Lead
	// fieldIDs numbers the free text fields by name, the way an account numbers its fields.
	fieldIDs map[string]int64
	lastID   int64
	created  Created
}

// Created holds what clients created through the API, in order. Record is used for entity
// kinds the sandbox stores as posted.
type Created struct {
	Contacts []Contact `json:"contacts"`
	Leads    []Lead    `json:"leads"`
	Tasks    []Record  `json:"tasks"`
	Notes    []Record  `json:"notes"`
	Unsorted []Record  `json:"unsorted"`
}

// Record is an entity as a client posted it.
type Record map[string]any

const (
	phoneFieldID   = 100001
	phoneEnumID    = 200001
	firstTextField = 100101
)

// newStore copies the seed's data, links contacts and leads both ways and stamps missing
// times with now. The seed is expected to be valid; anything dangling is dropped.
func newStore(s Seed, now time.Time) *store {
	st := &store{
		users:     map[int64]*User{},
		contacts:  map[int64]*Contact{},
		companies: map[int64]*Company{},
		leads:     map[int64]*Lead{},
		fieldIDs:  map[string]int64{},
		created:   emptyCreated(),
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
		st.leads[l.ID] = &l
		st.bump(l.ID)
	}
	var names []string
	for _, c := range s.Contacts {
		stamp(&c.CreatedAt, &c.UpdatedAt)
		c.Phones = slices.Clone(c.Phones)
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

func emptyCreated() Created {
	return Created{Contacts: []Contact{}, Leads: []Lead{}, Tasks: []Record{}, Notes: []Record{}, Unsorted: []Record{}}
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
			c.Phones, c.Fields, c.LeadIDs = slices.Clone(c.Phones), maps.Clone(c.Fields), slices.Clone(c.LeadIDs)
			return c
		}),
		Leads: sortedCopy(st.leads, func(l Lead) Lead {
			l.ContactIDs = slices.Clone(l.ContactIDs)
			return l
		}),
	}
	return s
}

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
