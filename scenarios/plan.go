package scenarios

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
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
	// FromDecision: contact and deal came from the routing decision, not a lookup.
	FromDecision bool `json:",omitempty"`
	// Reasons say why a scenario created less than it could (for logs).
	Reasons []string `json:",omitempty"`
	Actions []Action `json:"-"`
}

// Plan computes what the outcome creates, reading the CRM (the client's contacts and deals,
// pending Unsorted entries, open tasks) and the engine's State (task deadlines); it writes
// nothing. HandleCall carries out the same plan.
func (e *Engine) Plan(ctx context.Context, o routing.CallOutcome) ([]Action, error) {
	p, err := e.plan(ctx, o, false)
	return p.Actions, err
}

// planner builds one plan; contact and deal are where the client's task and note go.
type planner struct {
	e       *Engine
	o       routing.CallOutcome
	p       *planned
	f       fields
	now     time.Time
	client  routing.Client
	contact Ref
	deal    Ref
}

func (b *planner) add(a Action) { b.p.Actions = append(b.p.Actions, a) }

func (b *planner) because(format string, args ...any) {
	b.p.Reasons = append(b.p.Reasons, fmt.Sprintf(format, args...))
}

func (b *planner) key(k Kind) string { return ActionKey(b.o.ID, k) }

// plan computes the outcome's plan; live ignores the routing decision's client and asks
// the CRM (the decision's contact or deal turned out gone).
func (e *Engine) plan(ctx context.Context, o routing.CallOutcome, live bool) (planned, error) {
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

	var seen *routing.Client
	if !live && o.Direction == routing.Incoming && o.Decision.Phone == phone && o.Decision.Client != nil {
		changed, err := e.changedSince(ctx, phone, o.Decision.Client.ReadAt)
		if err != nil {
			return planned{}, err
		}
		if !changed {
			seen = o.Decision.Client
		}
	}
	if b.client, p.FromDecision, err = e.clients.ResolveClient(ctx, phone, seen); err != nil {
		return planned{}, fmt.Errorf("rules: %w", err)
	}
	if c := b.client; c.Known {
		p.Known, p.ContactID = true, c.ContactID
		b.contact = Existing(crm.EntityContact, c.ContactID)
		if c.DealID != 0 {
			p.OpenLeadID = c.DealID
			b.deal = Existing(crm.EntityLead, c.DealID)
		}
	}

	switch {
	case o.Direction == routing.Incoming && !b.client.Known:
		if err := b.incomingUnknown(ctx); err != nil {
			return planned{}, err
		}
	case o.Direction == routing.Incoming:
		b.knownClient(e.cfg.Incoming.Known)
	case !o.Answered:
		if c := b.client; (!c.Known && e.cfg.Outgoing.Unknown.CreateContact) ||
			(c.Known && c.DealID == 0 && e.cfg.Outgoing.Known.CreateDealIfNoOpen) {
			b.because("the outgoing call was not answered: no contact or deal is created for it")
		}
	case !b.client.Known:
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
	case b.client.DealID != 0:
		return
	case !k.CreateDealIfNoOpen:
		b.because("the client has no open deal and create_deal_if_no_open is off")
		return
	}
	resp := b.client.ContactResponsible
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

// credited is the manager amoCRM's call statistics count an incoming call for (its note's
// and its task's created_by): who talked; for a missed call whose phone rang first, else
// the default manager, whoever missed.responsible gives the call-back to.
func (b *planner) credited() crm.UserID {
	if b.o.Answered {
		return b.o.AnsweredBy
	}
	return cmp.Or(b.o.FirstOperator, b.e.cfg.Missed.DefaultManager)
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
	if b.client.Known && b.client.ContactResponsible != 0 {
		resp = b.client.ContactResponsible
	}
	// The deadline counts from the end of the call, not from when the event was processed,
	// so a retried or delayed outcome plans the same task.
	end := start.Add(b.o.RingDuration + b.o.TalkDuration)
	b.add(CreateTask{
		Task: crm.NewTask{
			Text:         render(m.TaskText, b.f),
			TypeID:       crm.TaskTypeCall,
			Responsible:  resp,
			CreatedBy:    b.credited(),
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
		n.Direction, n.Responsible, n.Result = crm.CallIn, b.credited(), b.o.TalkSummary()
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

// clientKey records when the scenarios last created a contact or deal for the number.
func clientKey(phone crm.Phone) string { return "client:" + string(phone) + ":changed" }

// clientChanged records that the scenarios created a contact or deal for the number: no
// routing decision whose lookup began before holds for it (the owner cache learns of the
// records only from a later lookup; routing keeps its answer till then). Wall-clock time,
// compared with the router's lookup start.
func (e *Engine) clientChanged(ctx context.Context, phone crm.Phone) error {
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := e.state.Save(ctx, clientKey(phone), []byte(now), e.stateTTL); err != nil {
		return fmt.Errorf("record the new records of %s: %w", phone, err)
	}
	return nil
}

// changedSince reports whether the scenarios created records for the number after t.
func (e *Engine) changedSince(ctx context.Context, phone crm.Phone, t time.Time) (bool, error) {
	v, ok, err := e.state.Load(ctx, clientKey(phone))
	if err != nil {
		return false, fmt.Errorf("rules: records of %s: %w", phone, err)
	}
	if !ok {
		return false, nil
	}
	at, err := strconv.ParseInt(string(v), 10, 64)
	return err != nil || !time.Unix(0, at).Before(t), nil
}

// findClient asks the CRM which contact and open deal the number means; routing decides
// that (ClientResolver), so the call note lands where the call was routed.
func (e *Engine) findClient(ctx context.Context, phone crm.Phone) (routing.Client, error) {
	c, _, err := e.clients.ResolveClient(ctx, phone, nil)
	if err != nil {
		return routing.Client{}, fmt.Errorf("rules: %w", err)
	}
	return c, nil
}
