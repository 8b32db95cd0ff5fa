// Package scenariotest is an in-memory CRM account for tests of the rules engine and of what
// sits around it (the event queue, the lead's end-to-end wiring): it implements both
// crm.Directory and crm.Writer, records every entity written through the Writer, and fails
// chosen writes on request, before or after they take effect.
package scenariotest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// Contact is a contact as the fake CRM holds it.
type Contact struct {
	crm.Contact
	RequestID string
}

// Lead is a deal with what crm.Lead does not carry.
type Lead struct {
	crm.Lead
	ContactIDs []int64
	Tags       []string
	RequestID  string
}

// Task is a task with the request id it was created with.
type Task struct {
	crm.Task
	RequestID string
}

// UnsortedStatus is where an Unsorted entry stands.
type UnsortedStatus string

const (
	UnsortedPending  UnsortedStatus = "pending"
	UnsortedAccepted UnsortedStatus = "accepted"
	UnsortedDeclined UnsortedStatus = "declined"
)

// Unsorted is an Unsorted (sip) entry.
type Unsorted struct {
	crm.UnsortedCall
	Status UnsortedStatus
}

// TextNote is a plain note.
type TextNote struct {
	Entity crm.EntityType
	ID     int64
	Text   string
}

// ResponsibleSet is a SetResponsible call.
type ResponsibleSet struct {
	Entity crm.EntityType
	ID     int64
	User   crm.UserID
}

// Snapshot lists entities in the order they were written.
type Snapshot struct {
	Contacts    []Contact
	Leads       []Lead
	Tasks       []Task
	Notes       []crm.CallNote
	TextNotes   []TextNote
	Unsorted    []Unsorted
	Responsible []ResponsibleSet
}

// Empty reports whether the snapshot holds nothing.
func (s Snapshot) Empty() bool {
	return len(s.Contacts)+len(s.Leads)+len(s.Tasks)+len(s.Notes)+len(s.TextNotes)+len(s.Unsorted)+len(s.Responsible) == 0
}

// Op is one CRM request: its method name (as on crm.Directory and crm.Writer) and its
// 1-based number among the requests of its class (reads or writes) so far.
type Op struct {
	Method string
	N      int
}

// CRM is an in-memory CRM account. The zero value is not usable; call New. Fault hooks
// must be set before use; everything else is safe for concurrent use.
//
// Like amoCRM, it does not deduplicate contacts, leads or tasks by RequestID, so a test sees
// every duplicate the code under test creates. Unsorted entries (by UID) and call notes (by
// entity and Uniq) are deduplicated, as crm.Writer promises; Calls tells how often they were
// sent.
type CRM struct {
	// Region reads the phones written on cards (default RU).
	Region string
	// Now stamps created entities (default time.Now).
	Now func() time.Time
	// FailWrite runs before each write; an error fails the write, which changes nothing.
	FailWrite func(Op) error
	// LoseWrite runs after a write took effect; an error is returned as if the CRM had
	// done the write but its response was lost (a timeout, a dropped connection).
	LoseWrite func(Op) error
	// FailRead runs before each read (Directory methods, PendingUnsorted, OpenTasks).
	FailRead func(Op) error

	mu        sync.Mutex
	contacts  []*Contact
	leads     []*Lead
	tasks     []*Task
	notes     []crm.CallNote
	textNotes []TextNote
	unsorted  []*Unsorted
	resp      []ResponsibleSet
	companies map[int64]crm.Company
	users     []crm.User
	seeded    map[string]bool // "contact:12" etc. for entities added by the test
	parsed    map[string]crm.Phone
	nextID    map[string]int64
	reads     int
	writes    int
	calls     map[string]int
}

// New returns an empty account. Created ids start at 1001 (contacts), 2001 (leads) and
// 3001 (tasks), so tests can name them.
func New() *CRM {
	return &CRM{
		Region:    "RU",
		companies: map[int64]crm.Company{},
		seeded:    map[string]bool{},
		parsed:    map[string]crm.Phone{},
		nextID:    map[string]int64{"contact": 1000, "lead": 2000, "task": 3000},
		calls:     map[string]int{},
	}
}

// FailOnce returns a hook that fails the n-th operation with err, once.
func FailOnce(n int, err error) func(Op) error {
	var mu sync.Mutex
	fired := false
	return func(op Op) error {
		mu.Lock()
		defer mu.Unlock()
		if op.N == n && !fired {
			fired = true
			return err
		}
		return nil
	}
}

// ErrInjected is the error the fault hooks of tests usually return.
var ErrInjected = fmt.Errorf("injected CRM failure: %w", crm.ErrUnavailable)

func (c *CRM) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *CRM) newID(kind string) int64 {
	c.nextID[kind]++
	return c.nextID[kind]
}

// --- seeding and inspection -------------------------------------------------------------

// AddContact seeds a contact (ID assigned when 0) and returns its id.
func (c *CRM) AddContact(ct crm.Contact) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ct.ID == 0 {
		ct.ID = c.newID("contact")
	}
	ct.Phones, ct.LeadIDs = slices.Clone(ct.Phones), slices.Clone(ct.LeadIDs)
	c.contacts = append(c.contacts, &Contact{Contact: ct})
	c.seeded[fmt.Sprintf("contact:%d", ct.ID)] = true
	return ct.ID
}

// AddLead seeds a lead linked to the contacts (their LeadIDs gain it) and returns its id.
func (c *CRM) AddLead(l crm.Lead, contactIDs ...int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l.ID == 0 {
		l.ID = c.newID("lead")
	}
	c.leads = append(c.leads, &Lead{Lead: l, ContactIDs: slices.Clone(contactIDs)})
	c.link(l.ID, contactIDs)
	c.seeded[fmt.Sprintf("lead:%d", l.ID)] = true
	return l.ID
}

// AddTask seeds a task and returns its id.
func (c *CRM) AddTask(t crm.Task) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.ID == 0 {
		t.ID = c.newID("task")
	}
	c.tasks = append(c.tasks, &Task{Task: t})
	c.seeded[fmt.Sprintf("task:%d", t.ID)] = true
	return t.ID
}

// AddCompany seeds a company.
func (c *CRM) AddCompany(co crm.Company) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.companies[co.ID] = co
}

// SetUsers sets the account users.
func (c *CRM) SetUsers(us ...crm.User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users = slices.Clone(us)
}

// CompleteTask marks a task completed, as a manager ticking it off.
func (c *CRM) CompleteTask(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tasks {
		if t.ID == id {
			t.Completed = true
		}
	}
}

// DecideUnsorted accepts or declines the Unsorted entry with the UID.
func (c *CRM) DecideUnsorted(uid string, s UnsortedStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range c.unsorted {
		if u.UID == uid {
			u.Status = s
		}
	}
}

// Created returns what was written through crm.Writer (seeded entities left out, though a
// seeded contact gaining a created lead is not reported: see All).
func (c *CRM) Created() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snapshot(func(kind string, id int64) bool { return !c.seeded[fmt.Sprintf("%s:%d", kind, id)] })
}

// All returns every entity, seeded ones included, as it stands now.
func (c *CRM) All() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snapshot(func(string, int64) bool { return true })
}

func (c *CRM) snapshot(keep func(kind string, id int64) bool) Snapshot {
	var s Snapshot
	for _, ct := range c.contacts {
		if keep("contact", ct.ID) {
			cp := *ct
			cp.Phones, cp.LeadIDs = slices.Clone(ct.Phones), slices.Clone(ct.LeadIDs)
			s.Contacts = append(s.Contacts, cp)
		}
	}
	for _, l := range c.leads {
		if keep("lead", l.ID) {
			cp := *l
			cp.ContactIDs, cp.Tags = slices.Clone(l.ContactIDs), slices.Clone(l.Tags)
			s.Leads = append(s.Leads, cp)
		}
	}
	for _, t := range c.tasks {
		if keep("task", t.ID) {
			s.Tasks = append(s.Tasks, *t)
		}
	}
	s.Notes = slices.Clone(c.notes)
	s.TextNotes = slices.Clone(c.textNotes)
	for _, u := range c.unsorted {
		s.Unsorted = append(s.Unsorted, *u)
	}
	s.Responsible = slices.Clone(c.resp)
	return s
}

// Calls returns how many requests of a method (e.g. "FindContactsByPhone") were made,
// failed ones included.
func (c *CRM) Calls(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[method]
}

// Requests returns the number of reads and writes made.
func (c *CRM) Requests() (reads, writes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads, c.writes
}

// --- request accounting and faults ------------------------------------------------------

func (c *CRM) read(ctx context.Context, method string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.reads++
	c.calls[method]++
	op := Op{Method: method, N: c.reads}
	c.mu.Unlock()
	if c.FailRead != nil {
		if err := c.FailRead(op); err != nil {
			return fmt.Errorf("fake CRM %s: %w", method, err)
		}
	}
	return nil
}

// write runs apply (under the lock) unless FailWrite fails it, then lets LoseWrite lose
// the response. An error from apply is the CRM rejecting the request: nothing is written.
func (c *CRM) write(ctx context.Context, method string, apply func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.writes++
	c.calls[method]++
	op := Op{Method: method, N: c.writes}
	c.mu.Unlock()
	if c.FailWrite != nil {
		if err := c.FailWrite(op); err != nil {
			return fmt.Errorf("fake CRM %s: %w", method, err)
		}
	}
	c.mu.Lock()
	err := apply()
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("fake CRM %s: %w", method, err)
	}
	if c.LoseWrite != nil {
		if err := c.LoseWrite(op); err != nil {
			return fmt.Errorf("fake CRM %s (written, response lost): %w", method, err)
		}
	}
	return nil
}

// --- crm.Directory ----------------------------------------------------------------------

// FindContactsByPhone implements crm.Directory: contacts with a card phone that is the number.
func (c *CRM) FindContactsByPhone(ctx context.Context, phone crm.Phone) ([]crm.Contact, error) {
	if err := c.read(ctx, "FindContactsByPhone"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []crm.Contact
	for _, ct := range c.contacts {
		if slices.ContainsFunc(ct.Phones, func(w string) bool { return c.sameNumber(phone, w) }) {
			cp := ct.Contact
			cp.Phones, cp.LeadIDs = slices.Clone(ct.Phones), slices.Clone(ct.LeadIDs)
			out = append(out, cp)
		}
	}
	return out, nil
}

// Leads implements crm.Directory.
func (c *CRM) Leads(ctx context.Context, ids []int64) ([]crm.Lead, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if err := c.read(ctx, "Leads"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []crm.Lead
	for _, id := range ids {
		if l := c.lead(id); l != nil {
			out = append(out, l.Lead)
		}
	}
	return out, nil
}

// Contact implements crm.Directory.
func (c *CRM) Contact(ctx context.Context, id int64) (crm.Contact, error) {
	if err := c.read(ctx, "Contact"); err != nil {
		return crm.Contact{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ct := c.contact(id)
	if ct == nil {
		return crm.Contact{}, fmt.Errorf("contact %d: %w", id, crm.ErrNotFound)
	}
	cp := ct.Contact
	cp.Phones, cp.LeadIDs = slices.Clone(ct.Phones), slices.Clone(ct.LeadIDs)
	return cp, nil
}

// Company implements crm.Directory.
func (c *CRM) Company(ctx context.Context, id int64) (crm.Company, error) {
	if err := c.read(ctx, "Company"); err != nil {
		return crm.Company{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	co, ok := c.companies[id]
	if !ok {
		return crm.Company{}, fmt.Errorf("company %d: %w", id, crm.ErrNotFound)
	}
	return co, nil
}

// Users implements crm.Directory.
func (c *CRM) Users(ctx context.Context) ([]crm.User, error) {
	if err := c.read(ctx, "Users"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.users), nil
}

// sameNumber is Phone.SameNumber with the parse remembered, so benchmarks measure the code
// under test rather than the fake's phone parsing; the caller holds mu.
func (c *CRM) sameNumber(phone crm.Phone, written string) bool {
	p, ok := c.parsed[written]
	if !ok {
		q, err := crm.ParsePhone(written, c.Region)
		if err != nil {
			return false
		}
		p, c.parsed[written] = q, q
	}
	return p == phone
}

func (c *CRM) contact(id int64) *Contact {
	for _, ct := range c.contacts {
		if ct.ID == id {
			return ct
		}
	}
	return nil
}

func (c *CRM) lead(id int64) *Lead {
	for _, l := range c.leads {
		if l.ID == id {
			return l
		}
	}
	return nil
}

func (c *CRM) link(leadID int64, contactIDs []int64) {
	for _, id := range contactIDs {
		if ct := c.contact(id); ct != nil && !slices.Contains(ct.LeadIDs, leadID) {
			ct.LeadIDs = append(ct.LeadIDs, leadID)
		}
	}
}

// --- crm.Writer -------------------------------------------------------------------------

// CreateContacts implements crm.Writer.
func (c *CRM) CreateContacts(ctx context.Context, cs []crm.NewContact) ([]int64, error) {
	var ids []int64
	err := c.write(ctx, "CreateContacts", func() error {
		now := c.now()
		for _, n := range cs {
			ct := &Contact{Contact: crm.Contact{
				ID: c.newID("contact"), Name: n.Name, Responsible: n.Responsible, UpdatedAt: now,
			}, RequestID: n.RequestID}
			for _, p := range n.Phones {
				ct.Phones = append(ct.Phones, string(p))
			}
			c.contacts = append(c.contacts, ct)
			ids = append(ids, ct.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// CreateLeads implements crm.Writer; a lead is linked to its contacts.
func (c *CRM) CreateLeads(ctx context.Context, ls []crm.NewLead) ([]int64, error) {
	var ids []int64
	err := c.write(ctx, "CreateLeads", func() error {
		for _, n := range ls {
			for _, id := range n.ContactIDs {
				if c.contact(id) == nil {
					return fmt.Errorf("contact %d: %w", id, crm.ErrNotFound)
				}
			}
		}
		now := c.now()
		for _, n := range ls {
			l := &Lead{Lead: crm.Lead{
				ID: c.newID("lead"), Name: n.Name, PipelineID: n.PipelineID, StatusID: n.StatusID,
				Responsible: n.Responsible, CreatedAt: now, UpdatedAt: now,
			}, ContactIDs: slices.Clone(n.ContactIDs), Tags: slices.Clone(n.Tags), RequestID: n.RequestID}
			c.leads = append(c.leads, l)
			c.link(l.ID, n.ContactIDs)
			ids = append(ids, l.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// AddUnsortedCalls implements crm.Writer; an entry whose UID exists is not added again.
func (c *CRM) AddUnsortedCalls(ctx context.Context, us []crm.UnsortedCall) error {
	return c.write(ctx, "AddUnsortedCalls", func() error {
		for _, u := range us {
			if !slices.ContainsFunc(c.unsorted, func(x *Unsorted) bool { return x.UID == u.UID }) {
				c.unsorted = append(c.unsorted, &Unsorted{UnsortedCall: u, Status: UnsortedPending})
			}
		}
		return nil
	})
}

// PendingUnsorted implements crm.Writer.
func (c *CRM) PendingUnsorted(ctx context.Context, phone crm.Phone) (string, error) {
	if err := c.read(ctx, "PendingUnsorted"); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range c.unsorted {
		if u.Phone == phone && u.Status == UnsortedPending {
			return u.UID, nil
		}
	}
	return "", nil
}

// AcceptUnsorted implements crm.Writer as amoCRM does: the entry's contact (when it names
// one) and lead are created, responsible the accepting user, the lead linked to the
// contact.
func (c *CRM) AcceptUnsorted(ctx context.Context, uid string, user crm.UserID, statusID int64) (crm.UnsortedEntry, bool, error) {
	var entry crm.UnsortedEntry
	accepted := false
	err := c.write(ctx, "AcceptUnsorted", func() error {
		i := slices.IndexFunc(c.unsorted, func(u *Unsorted) bool { return u.UID == uid })
		if i < 0 {
			return fmt.Errorf("unsorted %s: %w", uid, crm.ErrNotFound)
		}
		u := c.unsorted[i]
		entry.UID = uid
		if u.Status != UnsortedPending {
			return nil
		}
		now := c.now()
		var contacts []int64
		if u.ContactName != "" {
			ct := &Contact{Contact: crm.Contact{ID: c.newID("contact"), Name: u.ContactName, Responsible: user,
				UpdatedAt: now, Phones: []string{string(u.Phone)}}, RequestID: uid}
			c.contacts = append(c.contacts, ct)
			entry.ContactID, contacts = ct.ID, []int64{ct.ID}
		}
		l := &Lead{Lead: crm.Lead{ID: c.newID("lead"), Name: u.LeadName, PipelineID: u.PipelineID, StatusID: statusID,
			Responsible: user, CreatedAt: now, UpdatedAt: now}, ContactIDs: contacts, RequestID: uid}
		c.leads = append(c.leads, l)
		c.link(l.ID, contacts)
		entry.LeadID = l.ID
		u.Status, accepted = UnsortedAccepted, true
		return nil
	})
	return entry, accepted, err
}

// CreateTasks implements crm.Writer.
func (c *CRM) CreateTasks(ctx context.Context, ts []crm.NewTask) ([]int64, error) {
	var ids []int64
	err := c.write(ctx, "CreateTasks", func() error {
		for _, n := range ts {
			t := &Task{Task: crm.Task{
				ID: c.newID("task"), Text: n.Text, TypeID: n.TypeID, Responsible: n.Responsible,
				Entity: n.Entity, EntityID: n.EntityID, CompleteTill: n.CompleteTill,
			}, RequestID: n.RequestID}
			c.tasks = append(c.tasks, t)
			ids = append(ids, t.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// OpenTasks implements crm.Writer.
func (c *CRM) OpenTasks(ctx context.Context, entity crm.EntityType, id int64) ([]crm.Task, error) {
	if err := c.read(ctx, "OpenTasks"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []crm.Task
	for _, t := range c.tasks {
		if t.Entity == entity && t.EntityID == id && !t.Completed {
			out = append(out, t.Task)
		}
	}
	return out, nil
}

// AddCallNotes implements crm.Writer. Like amoCRM it adds a note whose Uniq is already on
// the entity again: avoiding that is the engine's job (CallNoteExists).
func (c *CRM) AddCallNotes(ctx context.Context, ns []crm.CallNote) error {
	return c.write(ctx, "AddCallNotes", func() error {
		for _, n := range ns {
			if n.Entity == "" || n.EntityID == 0 {
				return fmt.Errorf("note %q has no entity", n.Uniq)
			}
		}
		c.notes = append(c.notes, ns...)
		return nil
	})
}

// CallNoteExists implements crm.Writer.
func (c *CRM) CallNoteExists(ctx context.Context, entity crm.EntityType, id int64, uniq string) (bool, error) {
	if err := c.read(ctx, "CallNoteExists"); err != nil {
		return false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.notes, func(x crm.CallNote) bool {
		return x.Uniq == uniq && x.Entity == entity && x.EntityID == id
	}), nil
}

// AddTextNote implements crm.Writer.
func (c *CRM) AddTextNote(ctx context.Context, entity crm.EntityType, id int64, text string) error {
	return c.write(ctx, "AddTextNote", func() error {
		c.textNotes = append(c.textNotes, TextNote{entity, id, text})
		return nil
	})
}

// SetResponsible implements crm.Writer.
func (c *CRM) SetResponsible(ctx context.Context, entity crm.EntityType, id int64, user crm.UserID) error {
	return c.write(ctx, "SetResponsible", func() error {
		c.resp = append(c.resp, ResponsibleSet{entity, id, user})
		switch entity {
		case crm.EntityContact:
			if ct := c.contact(id); ct != nil {
				ct.Responsible = user
			}
		case crm.EntityLead:
			if l := c.lead(id); l != nil {
				l.Responsible = user
			}
		}
		return nil
	})
}

var (
	_ crm.Directory = (*CRM)(nil)
	_ crm.Writer    = (*CRM)(nil)
)
