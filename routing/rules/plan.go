package rules

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
)

// planned is a plan with what it was computed from; it is what the State stores.
type planned struct {
	OutcomeID string
	Phone     crm.Phone
	// Known: the number was on a CRM contact (ContactID) when the plan was made.
	Known     bool
	ContactID int64 `json:",omitempty"`
	// OpenLeadID is the known client's open deal the plan used (0: none).
	OpenLeadID int64 `json:",omitempty"`
	PlannedAt  time.Time
	// Reasons say why a scenario created less than it could (for logs).
	Reasons []string `json:",omitempty"`
	Actions []Action `json:"-"`
}

// Plan computes what the outcome creates, reading the CRM (the client's contacts and deals,
// pending Unsorted entries, open tasks) and the engine's State (task deadlines); it writes
// nothing. HandleCall carries out the same plan.
func (e *Engine) Plan(ctx context.Context, o routing.CallOutcome) ([]Action, error) {
	p, err := e.plan(ctx, o)
	return p.Actions, err
}

// client is the CRM's view of the number.
type client struct {
	contact  crm.Contact
	known    bool
	openLead crm.Lead
	hasOpen  bool
}

// planner builds one plan; contact and deal are where the client's task and note go.
type planner struct {
	e       *Engine
	o       routing.CallOutcome
	p       *planned
	f       fields
	now     time.Time
	client  client
	contact Ref
	deal    Ref
}

func (b *planner) add(a Action) { b.p.Actions = append(b.p.Actions, a) }

func (b *planner) because(format string, args ...any) {
	b.p.Reasons = append(b.p.Reasons, fmt.Sprintf(format, args...))
}

func (b *planner) key(k Kind) string { return ActionKey(b.o.ID, k) }

func (e *Engine) plan(ctx context.Context, o routing.CallOutcome) (planned, error) {
	if err := checkOutcome(o); err != nil {
		return planned{}, err
	}
	raw := o.Caller
	if o.Direction == routing.Outgoing {
		raw = o.Called
	}
	now := e.Clock()
	phone, err := e.phones.Parse(raw)
	if routing.Withheld(raw) || err != nil {
		// Every record the scenarios create hangs on the client's number: a contact is
		// found by it, an Unsorted call entry and a call-back task are there to call it, a
		// note goes on its card. Without one there is nobody to find or call back, and a
		// placeholder contact would gather every withheld caller into one card; the PBX's
		// own call records keep the call.
		why := fmt.Sprintf("the client's number %q is withheld", raw)
		if !routing.Withheld(raw) {
			why = fmt.Sprintf("the client's number %q is not a phone number (%v)", raw, err)
		}
		return planned{OutcomeID: o.ID, PlannedAt: now,
			Reasons: []string{why + ": no contact lookup, Unsorted entry, task or note"}}, nil
	}
	start := o.Start
	if start.IsZero() {
		start = now
	}
	p := planned{OutcomeID: o.ID, Phone: phone, PlannedAt: now}
	b := &planner{e: e, o: o, p: &p, now: now,
		f: fields{phone: phone, called: o.Called, start: start.In(e.loc)}}

	if b.client, err = e.findClient(ctx, phone); err != nil {
		return planned{}, err
	}
	if c := b.client; c.known {
		p.Known, p.ContactID = true, c.contact.ID
		b.contact = Existing(crm.EntityContact, c.contact.ID)
		if c.hasOpen {
			p.OpenLeadID = c.openLead.ID
			b.deal = Existing(crm.EntityLead, c.openLead.ID)
		}
	}

	switch {
	case o.Direction == routing.Incoming && !b.client.known:
		if err := b.incomingUnknown(ctx); err != nil {
			return planned{}, err
		}
	case o.Direction == routing.Incoming:
		b.knownClient(e.cfg.Incoming.Known)
	case !o.Answered:
		if c := b.client; (!c.known && e.cfg.Outgoing.Unknown.CreateContact) ||
			(c.known && !c.hasOpen && e.cfg.Outgoing.Known.CreateDealIfNoOpen) {
			b.because("the outgoing call was not answered: no contact or deal is created for it")
		}
	case !b.client.known:
		b.outgoingUnknown()
	default:
		b.knownClient(e.cfg.Outgoing.Known)
	}
	if o.Direction == routing.Incoming && !o.Answered {
		if err := b.missedTask(ctx, start); err != nil {
			return planned{}, err
		}
	}
	b.callNote()
	return p, nil
}

// checkOutcome rejects outcomes no retry can make usable.
func checkOutcome(o routing.CallOutcome) error {
	switch {
	case o.ID == "":
		return fmt.Errorf("%w: no id (the Asterisk linkedid is the idempotency key)", ErrInvalidOutcome)
	case o.Direction != routing.Incoming && o.Direction != routing.Outgoing:
		return fmt.Errorf("%w %s: direction is %q; allowed: incoming, outgoing", ErrInvalidOutcome, o.ID, o.Direction)
	}
	return nil
}

func (b *planner) incomingUnknown(ctx context.Context) error {
	u := b.e.cfg.Incoming.Unknown
	if u.Mode == ModeUnsorted || (u.Mode == ModeUnsortedUntilAnswered && !b.o.Answered) {
		return b.unsorted(ctx, u)
	}
	resp := b.newClientResponsible()
	if !u.CreateContact {
		b.because("incoming.unknown.create_contact is off: nothing is created for a new caller")
		return nil
	}
	if u.Mode == ModeUnsortedUntilAnswered {
		// An earlier missed call of this number may wait in Unsorted: the answered call
		// accepts it, so the client gets one contact and deal, not a second pair beside the
		// entry.
		uid, err := b.pendingUnsorted(ctx)
		if err != nil {
			return err
		}
		if uid != "" {
			b.add(AcceptUnsorted{UID: uid, User: resp, StatusID: u.StatusID, Phone: b.p.Phone})
			b.contact = CreatedBy(crm.EntityContact, KindContact)
			b.deal = CreatedBy(crm.EntityLead, KindLead)
			return nil
		}
	}
	b.createContact(u.ContactName, resp)
	if u.CreateDeal {
		b.createLead(u.DealName, u.PipelineID, u.StatusID, u.Tags, resp)
	}
	return nil
}

// pendingUnsorted is the uid of the number's Unsorted entry that waits for a manager; ""
// when none does.
func (b *planner) pendingUnsorted(ctx context.Context) (string, error) {
	uid, err := b.e.w.PendingUnsorted(ctx, b.p.Phone)
	if err != nil {
		return "", fmt.Errorf("rules: outcome %s: pending Unsorted of %s: %w", b.o.ID, b.p.Phone, err)
	}
	return uid, nil
}

// unsorted sends a new caller to amoCRM's Unsorted, once per number until a manager decides.
func (b *planner) unsorted(ctx context.Context, u IncomingUnknown) error {
	if !u.CreateContact && !u.CreateDeal {
		b.because("incoming.unknown.create_contact and create_deal are off: no Unsorted entry")
		return nil
	}
	pending, err := b.pendingUnsorted(ctx)
	if err != nil {
		return err
	}
	if pending != "" {
		b.because("an Unsorted entry for %s still waits for a manager: no second one", b.p.Phone)
		return nil
	}
	call := crm.UnsortedCall{
		UID:         b.o.ID,
		SourceName:  b.e.cfg.Notes.Source,
		PipelineID:  u.PipelineID,
		Phone:       b.p.Phone,
		CalledAt:    b.f.start,
		Duration:    b.o.TalkDuration,
		Link:        b.o.RecordingURL,
		Responsible: b.newClientResponsible(),
	}
	if u.CreateContact {
		call.ContactName = render(u.ContactName, b.f)
	}
	if u.CreateDeal {
		call.LeadName = render(u.DealName, b.f)
	}
	b.add(AddUnsorted{Call: call})
	return nil
}

// knownClient creates a deal for a client without an open one, when switched on.
func (b *planner) knownClient(k KnownClient) {
	switch {
	case b.client.hasOpen:
		return
	case !k.CreateDealIfNoOpen:
		b.because("the client has no open deal and create_deal_if_no_open is off")
		return
	}
	resp := b.client.contact.Responsible
	if resp == 0 {
		resp = b.newClientResponsible()
	}
	b.createLead(k.DealName, k.PipelineID, k.StatusID, k.Tags, resp)
}

func (b *planner) outgoingUnknown() {
	u := b.e.cfg.Outgoing.Unknown
	if !u.CreateContact {
		b.because("outgoing.unknown.create_contact is off: nothing is created for the number")
		return
	}
	resp := b.newClientResponsible()
	b.createContact(u.ContactName, resp)
	if u.CreateDeal {
		b.createLead(u.DealName, u.PipelineID, u.StatusID, u.Tags, resp)
	}
}

func (b *planner) createContact(name string, resp crm.UserID) {
	b.add(CreateContact{Contact: crm.NewContact{
		Name:        render(name, b.f),
		Phones:      []crm.Phone{b.p.Phone},
		Responsible: resp,
		RequestID:   b.key(KindContact),
	}})
	b.contact = CreatedBy(crm.EntityContact, KindContact)
}

func (b *planner) createLead(name string, pipeline, status int64, tags []string, resp crm.UserID) {
	b.add(CreateLead{
		Lead: crm.NewLead{
			Name:        render(name, b.f),
			PipelineID:  pipeline,
			StatusID:    status,
			Responsible: resp,
			Tags:        cloneTags(tags),
			RequestID:   b.key(KindLead),
		},
		Contact: b.contact,
	})
	b.deal = CreatedBy(crm.EntityLead, KindLead)
}

// cloneTags copies the configured tags; none is nil, however the YAML spelt it.
func cloneTags(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	return slices.Clone(tags)
}

// target is where the client's task and note go: the deal created or found, else the contact.
func (b *planner) target() (Ref, bool) {
	switch {
	case b.deal != (Ref{}):
		return b.deal, true
	case b.contact != (Ref{}):
		return b.contact, true
	}
	return Ref{}, false
}

// newClientResponsible is who gets what a call creates for a client nobody owns yet: who
// answered, else who the missed-call rule names; on outgoing calls, who dialled.
func (b *planner) newClientResponsible() crm.UserID {
	if b.o.Direction == routing.Outgoing {
		return cmp.Or(b.o.Manager, b.e.cfg.Missed.DefaultManager)
	}
	return cmp.Or(b.o.AnsweredBy, b.missedResponsible())
}

// missedResponsible applies missed.responsible, falling back to the default manager.
func (b *planner) missedResponsible() crm.UserID {
	m := b.e.cfg.Missed
	if m.Responsible == ResponsibleFirstOperator && b.o.FirstOperator != 0 {
		return b.o.FirstOperator
	}
	return m.DefaultManager
}

// missedTask plans the call-back task, unless the client already has one whose deadline
// has not passed: on record in the State (tasks this engine created, seen before amoCRM
// lists them) or an open call task in the CRM on the deal or the contact.
func (b *planner) missedTask(ctx context.Context, start time.Time) error {
	m := b.e.cfg.Missed
	if !m.CreateTask {
		return nil
	}
	on, ok := b.target()
	if !ok {
		b.because("missed call: no contact or deal to put the call-back task on")
		return nil
	}
	until, err := b.e.state.TaskUntil(ctx, b.p.Phone)
	if err != nil {
		return fmt.Errorf("rules: outcome %s: %w", b.o.ID, err)
	}
	if until.After(b.now) {
		b.because("missed call: %s already has a call-back task until %s", b.p.Phone, until.Format(time.RFC3339))
		return nil
	}
	for _, r := range []Ref{b.deal, b.contact} {
		if r.ID == 0 {
			continue
		}
		tasks, err := b.e.w.OpenTasks(ctx, r.Entity, r.ID)
		if err != nil {
			return fmt.Errorf("rules: outcome %s: open tasks of %s: %w", b.o.ID, r, err)
		}
		for _, t := range tasks {
			if t.TypeID == crm.TaskTypeCall && !t.Completed && t.CompleteTill.After(b.now) {
				b.because("missed call: task %d on %s is open until %s", t.ID, r, t.CompleteTill.Format(time.RFC3339))
				return nil
			}
		}
	}
	resp := b.missedResponsible()
	if b.client.known && b.client.contact.Responsible != 0 {
		resp = b.client.contact.Responsible
	}
	// The deadline counts from the end of the call, not from when the event was processed,
	// so a retried or delayed outcome plans the same task.
	end := start.Add(b.o.RingDuration + b.o.TalkDuration)
	b.add(CreateTask{
		Task: crm.NewTask{
			Text:         render(m.TaskText, b.f),
			TypeID:       crm.TaskTypeCall,
			Responsible:  resp,
			CompleteTill: end.Add(m.Deadline),
			RequestID:    b.key(KindTask),
		},
		On:    on,
		Phone: b.p.Phone,
	})
	return nil
}

// Results shown on call notes that did not become a conversation.
const (
	ResultMissed     = "Missed call"
	ResultNotReached = "Not reached"
)

func (b *planner) callNote() {
	n := crm.CallNote{
		Uniq:     b.o.ID,
		Phone:    b.p.Phone,
		Duration: b.o.TalkDuration,
		Link:     b.o.RecordingURL,
		Source:   b.e.cfg.Notes.Source,
		Status:   crm.CallStatusAnswered,
	}
	on := b.e.cfg.Notes.CallNotes
	if b.o.Direction == routing.Incoming {
		n.Direction, n.Responsible = crm.CallIn, b.o.AnsweredBy
		if !b.o.Answered {
			n.Status, n.Result = crm.CallStatusNotReached, ResultMissed
		}
	} else {
		n.Direction, n.Responsible = crm.CallOut, b.o.Manager
		if !b.o.Answered {
			n.Status, n.Result = crm.CallStatusNotReached, ResultNotReached
			on = b.e.cfg.Outgoing.Unanswered.NotReachedNote
		}
	}
	if !on {
		return
	}
	target, ok := b.target()
	if !ok {
		b.because("call note: no contact or deal to put it on")
		return
	}
	b.add(AddCallNote{Note: n, On: target})
}

// findClient reads the number's contact and its open deal. Phone search is free text, so a
// hit is confirmed against the card's phones; among contacts sharing the number, the most
// recently updated one with an open deal wins, else the most recently updated one (the
// routing package chooses the same way, so the call note lands where the call was routed).
func (e *Engine) findClient(ctx context.Context, phone crm.Phone) (client, error) {
	found, err := e.dir.FindContactsByPhone(ctx, phone)
	if err != nil && !errors.Is(err, crm.ErrNotFound) {
		return client{}, fmt.Errorf("rules: find contacts of %s: %w", phone, err)
	}
	cands := e.verified(found, phone)
	if len(cands) == 0 {
		return client{}, nil
	}
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
	ids = slices.Compact(ids)
	var leads []crm.Lead
	if len(ids) > 0 {
		leads, err = e.dir.Leads(ctx, ids)
		if err != nil && !errors.Is(err, crm.ErrNotFound) {
			return client{}, fmt.Errorf("rules: leads of %s: %w", phone, err)
		}
	}
	byID := make(map[int64]crm.Lead, len(leads))
	for _, l := range leads {
		byID[l.ID] = l
	}
	for _, c := range cands {
		if l, ok := newestOpen(c, byID); ok {
			return client{contact: c, known: true, openLead: l, hasOpen: true}, nil
		}
	}
	return client{contact: cands[0], known: true}, nil
}

// maxContactCandidates bounds how many contacts sharing a number have their deals read.
const maxContactCandidates = 3

func newestOpen(c crm.Contact, byID map[int64]crm.Lead) (crm.Lead, bool) {
	var best crm.Lead
	ok := false
	for _, id := range c.LeadIDs {
		l, found := byID[id]
		if !found || !l.Open() {
			continue
		}
		if !ok || l.UpdatedAt.After(best.UpdatedAt) || (l.UpdatedAt.Equal(best.UpdatedAt) && l.ID > best.ID) {
			best, ok = l, true
		}
	}
	return best, ok
}

func (e *Engine) verified(contacts []crm.Contact, phone crm.Phone) []crm.Contact {
	var out []crm.Contact
	for _, c := range contacts {
		if len(c.Phones) == 0 || slices.ContainsFunc(c.Phones, func(w string) bool { return e.phones.Same(phone, w) }) {
			out = append(out, c)
		}
	}
	return out
}
