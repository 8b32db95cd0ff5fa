package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
)

// plan is what the first lead-creating event of a chat decided, kept so that redeliveries
// and later events of the chat carry out the same decision (a returning-client search
// after crmlink created the contact would otherwise find crmlink's own contact).
type plan struct {
	Skip        string     `json:"skip,omitempty"`
	Rule        string     `json:"rule,omitempty"`
	Target      Target     `json:"target"`
	DuplicateBy Field      `json:"duplicate_by,omitempty"`
	ContactID   int64      `json:"contact_id,omitempty"`
	OpenLeadID  int64      `json:"open_lead_id,omitempty"`
	Responsible crm.UserID `json:"responsible,omitempty"`
	Unsorted    bool       `json:"unsorted,omitempty"`
	// At is when the plan was made (the wall clock, as amoCRM's created_at): a deal an
	// interrupted attempt created is no older.
	At time.Time `json:"at,omitzero"`
	// By is the event that made the plan.
	By string `json:"by"`
}

// Handle acts on an online-chat event (chat_accepted, offline_message, chat_finished);
// other events are skipped. Errors wrapping events.ErrPermanent (the CRM rejected the data)
// are not worth a retry; others are, and a retry carries on where this attempt stopped.
func (e *Engine) Handle(ctx context.Context, ev chatbridge.Event) (Result, error) {
	switch {
	case !e.cfg.Enabled:
		return Result{Skipped: "chat leads are off (chat.leads.enabled)"}, nil
	case ev.Kind != chatbridge.EventChatAccepted && ev.Kind != chatbridge.EventOfflineMessage && ev.Kind != chatbridge.EventChatFinished:
		return Result{Skipped: "not an online-chat event"}, nil
	}
	chat := chatKey(ev)
	var p plan
	var skipped string
	steps := e.steps(chat)
	resumed, err := steps.Plan(ctx, func(b []byte) error { return json.Unmarshal(b, &p) }, func() ([]byte, error) {
		if !slices.Contains(e.cfg.Events, ev.Kind) {
			skipped = fmt.Sprintf("%s is not in chat.leads.events and nothing was created for the chat", ev.Kind)
			return nil, nil
		}
		var err error
		if p, err = e.decide(ctx, ev); err != nil {
			return nil, err
		}
		p.At = time.Now().UTC().Truncate(time.Second)
		return json.Marshal(p)
	})
	if skipped != "" {
		return Result{Skipped: skipped}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("leads: chat %s: %w", chat, err)
	}
	res := Result{Skipped: p.Skip, Rule: p.Rule, DuplicateBy: p.DuplicateBy, ContactID: p.ContactID, LeadID: p.OpenLeadID, Responsible: p.Responsible}
	if p.Skip != "" {
		return res, nil
	}
	if err := e.carryOut(ctx, ev, chat, steps, p, resumed, &res); err != nil {
		return res, fmt.Errorf("leads: chat %s: %w", chat, permanentIfRejected(err))
	}
	if ev.Kind == chatbridge.EventChatFinished && p.By != ev.ID && res.NoteOn != nil {
		// The plan is older than this event, so it says nothing about this step: a mark
		// does.
		ran, err := e.noteOnce(ctx, steps, "finished:"+ev.ID, events.Once{Mark: true}, *res.NoteOn, e.summary(ev))
		if err != nil {
			return res, fmt.Errorf("leads: chat %s: chat summary note: %w", chat, permanentIfRejected(err))
		}
		e.ran(&res, steps, "finished:"+ev.ID, ran)
	}
	return res, nil
}

func permanentIfRejected(err error) error {
	if errors.Is(err, crm.ErrRejected) {
		return events.Permanent(err)
	}
	return err
}

// chatKey names the chat an event belongs to: Jivo's chat id, or for an offline message
// (which has none) the event itself.
func chatKey(ev chatbridge.Event) string {
	if ev.Chat.ID != "" {
		return string(ev.Platform) + ":" + ev.Chat.ID
	}
	return ev.ID
}

// steps is the executor of the chat's plan and its steps, under "leads:<chat>:".
func (e *Engine) steps(chat string) events.Steps {
	return events.NewSteps(e.state, "leads:"+chat, e.cfg.Remember)
}

// decide finds a returning client, or the rule and the manager for a new one.
func (e *Engine) decide(ctx context.Context, ev chatbridge.Event) (plan, error) {
	p := plan{By: ev.ID}
	r := e.ruleFor(ev)
	p.Rule, p.Target = r.name, r.target
	if p.Target.Group == "" {
		p.Target.Group = e.cfg.Default.Group
	}
	if p.Target.Action == ActionIgnore {
		p.Skip = fmt.Sprintf("rule %q ignores the event", r.name)
		return p, nil
	}
	if ev.Phone == "" && visitorEmail(ev) == "" && e.customValue(ev) == "" {
		p.Skip = "the visitor left no phone, email or " + e.customFieldName()
		return p, nil
	}
	client, by, found, err := e.findClient(ctx, ev)
	if err != nil {
		return p, err
	}
	if found {
		p.Rule, p.DuplicateBy, p.ContactID, p.Responsible = "", by, client.ContactID, client.Owner
		p.OpenLeadID = client.DealID
		return p, nil
	}
	if e.cfg.Mode == ModeUnsorted && p.Target.Action == ActionContactAndDeal {
		p.Unsorted = true
		return p, nil
	}
	p.Responsible, err = e.distribute(ctx, p.Target.Group, ev)
	return p, err
}

func (e *Engine) ruleFor(ev chatbridge.Event) rule {
	for _, r := range e.rules {
		if r.matches(ev) {
			return r
		}
	}
	return rule{name: "default", target: e.cfg.Default}
}

// distribute picks the group's next manager who takes new clients and is at work when the
// event happened; the default responsible when none is.
func (e *Engine) distribute(ctx context.Context, group string, ev chatbridge.Event) (crm.UserID, error) {
	members := e.groups[group]
	if len(members) == 0 {
		return e.cfg.DefaultResponsible, nil
	}
	at := ev.At
	if at.IsZero() {
		at = e.opts.now()
	}
	available := make([]bool, len(members))
	for i, u := range members {
		m := e.managers[u]
		available[i] = m.TakesNewClients && m.Schedule.Available(at)
	}
	u, err := e.opts.rotation.Next(ctx, group, members, available)
	if err != nil {
		return 0, fmt.Errorf("distribute to group %q: %w", group, err)
	}
	if u == 0 {
		e.opts.log.Info().Str("group", group).Msg("leads: nobody in the group takes new clients now; the default responsible does")
		return e.cfg.DefaultResponsible, nil
	}
	return u, nil
}

// carryOut makes what the plan says, each write once per chat. resumed: an earlier attempt
// stored the plan, so a step it did not record may still have been written (the process
// died in between): such a step looks for its entity before creating it. Only the first
// step not on record can be one (each is recorded before the next begins), so the steps
// after it look for nothing.
func (e *Engine) carryOut(ctx context.Context, ev chatbridge.Event, chat string, steps events.Steps, p plan, resumed bool, res *Result) error {
	if p.Unsorted {
		return e.viaUnsorted(ctx, ev, chat, steps, p, res)
	}
	contactID := p.ContactID
	if contactID == 0 {
		nc := e.newContact(ev, p.Responsible, chat)
		id, ran, err := steps.RunOnceID(ctx, "contact", events.Once{
			Resumed: resumed,
			Find: func() ([]byte, bool, error) {
				id, err := e.ownContact(ctx, ev, nc)
				return events.IDValue(id), id != 0, err
			},
			Do: func() ([]byte, error) {
				ids, err := e.crm.CreateContacts(ctx, []crm.NewContact{nc})
				if err != nil {
					return nil, fmt.Errorf("create contact: %w", err)
				}
				return events.IDValue(ids[0]), nil
			},
		})
		if err != nil {
			return err
		}
		contactID, res.ContactID = id, id
		res.ContactCreated, res.Repeated = ran == events.RanNow, ran != events.RanNow
		e.ran(res, steps, "contact", ran)
		resumed = resumed && ran == events.RanEarlier
	}
	note := EntityRef{Entity: crm.EntityContact, ID: contactID}
	switch {
	case p.OpenLeadID != 0:
		note = EntityRef{Entity: crm.EntityLead, ID: p.OpenLeadID}
	case p.Target.Action == ActionContactOnly:
	case p.ContactID != 0 && e.cfg.ExistingClient.NoOpenDeal == NoOpenDealNote:
	default:
		nl := crm.NewLead{
			Name: e.leadName(ev), PipelineID: p.Target.PipelineID, StatusID: p.Target.StatusID,
			Responsible: p.Responsible, ContactIDs: []int64{contactID}, Tags: p.Target.Tags, RequestID: chat,
		}
		id, ran, err := steps.RunOnceID(ctx, "lead", events.Once{
			Resumed: resumed,
			Find: func() ([]byte, bool, error) {
				id, err := e.ownLead(ctx, contactID, nl, p.At)
				return events.IDValue(id), id != 0, err
			},
			Do: func() ([]byte, error) {
				ids, err := e.crm.CreateLeads(ctx, []crm.NewLead{nl})
				if err != nil {
					return nil, fmt.Errorf("create deal: %w", err)
				}
				return events.IDValue(ids[0]), nil
			},
		})
		if err != nil {
			return err
		}
		res.LeadID, res.LeadCreated, res.Repeated = id, ran == events.RanNow, ran != events.RanNow
		e.ran(res, steps, "lead", ran)
		resumed = resumed && ran == events.RanEarlier
		note = EntityRef{Entity: crm.EntityLead, ID: id}
	}
	ran, err := e.noteOnce(ctx, steps, "note", events.Once{Resumed: resumed}, note, e.summary(ev))
	if err != nil {
		return err
	}
	res.NoteOn, res.Repeated = &note, ran != events.RanNow
	e.ran(res, steps, "note", ran)
	return nil
}

// noteOnce adds a text note to target once per chat under step; how says when to look
// for it first (events.Once).
func (e *Engine) noteOnce(ctx context.Context, steps events.Steps, step string, how events.Once, target EntityRef, text string) (events.Ran, error) {
	how.Find = func() ([]byte, bool, error) {
		found, err := e.crm.TextNoteExists(ctx, target.Entity, target.ID, text)
		return nil, found, err
	}
	how.Do = func() ([]byte, error) {
		if err := e.crm.AddTextNote(ctx, target.Entity, target.ID, text); err != nil {
			return nil, fmt.Errorf("add note to %s %d: %w", target.Entity, target.ID, err)
		}
		return nil, nil
	}
	_, ran, err := steps.RunOnce(ctx, step, how)
	return ran, err
}

// ownContact finds the contact an interrupted attempt created for the visitor: one found
// by the first of phone, email and custom field the visitor gave, with the name crmlink
// gives it (so an older client who merely shares a field is not taken), the newest if
// several; 0 when there is none.
func (e *Engine) ownContact(ctx context.Context, ev chatbridge.Event, nc crm.NewContact) (int64, error) {
	for _, f := range []Field{FieldPhone, FieldEmail, FieldCustomField} {
		cs, asked, err := e.search(ctx, f, ev)
		if err != nil {
			return 0, fmt.Errorf("find the chat's contact by %s: %w", f, err)
		}
		if !asked {
			continue
		}
		var id int64
		for _, c := range cs {
			if strings.TrimSpace(c.Name) == strings.TrimSpace(nc.Name) {
				id = max(id, c.ID)
			}
		}
		return id, nil
	}
	return 0, nil
}

// ownLead finds the deal an interrupted attempt created on the contact: an open one with
// the planned name and pipeline, created since the plan (allowing for amoCRM's clock);
// 0 when there is none.
func (e *Engine) ownLead(ctx context.Context, contactID int64, want crm.NewLead, planned time.Time) (int64, error) {
	c, err := e.crm.Contact(ctx, contactID)
	if errors.Is(err, crm.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("contact %d: %w", contactID, err)
	}
	leads, err := e.crm.Leads(ctx, c.LeadIDs)
	if err != nil && !errors.Is(err, crm.ErrNotFound) {
		return 0, fmt.Errorf("deals of contact %d: %w", contactID, err)
	}
	var id int64
	for _, l := range leads {
		if l.Open() && l.Name == want.Name && (want.PipelineID == 0 || l.PipelineID == want.PipelineID) &&
			(planned.IsZero() || !l.CreatedAt.Before(planned.Add(-adoptWindow))) {
			id = max(id, l.ID)
		}
	}
	return id, nil
}

// adoptWindow allows for amoCRM's clock running behind ours when recognising a deal an
// interrupted attempt created.
const adoptWindow = 5 * time.Minute

// viaUnsorted puts a new client's request into Unsorted once per chat, and accepts it as
// the CRM user of the Jivo agent who accepted the chat, if it still waits.
func (e *Engine) viaUnsorted(ctx context.Context, ev chatbridge.Event, chat string, steps events.Steps, p plan, res *Result) error {
	uid, done, err := steps.Run(ctx, "unsorted", func() ([]byte, error) {
		o := ev.Origin
		if o == nil {
			o = &chatbridge.Origin{}
		}
		entry, err := e.crm.AddUnsortedForm(ctx, crm.UnsortedForm{
			UID: "crmlink:" + chat, SourceName: e.cfg.SourceName, PipelineID: p.Target.PipelineID,
			FormID: formOf(ev), FormName: e.cfg.SourceName + " " + formOf(ev), FormPage: o.PageURL, IP: o.IP,
			VisitorUID: visitorUID(ev), SentAt: ev.At, Contact: e.newContact(ev, 0, chat), LeadName: e.leadName(ev), Tags: p.Target.Tags,
		})
		if err != nil {
			return nil, fmt.Errorf("add to Unsorted: %w", err)
		}
		return []byte(entry.UID), nil
	})
	if err != nil {
		return err
	}
	res.UnsortedUID, res.Repeated = string(uid), done
	if raw, ok, err := steps.Done(ctx, "accepted"); err != nil {
		return fmt.Errorf("load accepted: %w", err)
	} else if ok {
		var acc crm.UnsortedEntry
		if err := json.Unmarshal(raw, &acc); err != nil {
			return events.Permanent(fmt.Errorf("stored accept unreadable: %w", err))
		}
		res.ContactID, res.LeadID = acc.ContactID, acc.LeadID
		if acc.LeadID == 0 {
			return nil
		}
		if ev.Kind != chatbridge.EventChatAccepted {
			res.NoteOn = &EntityRef{Entity: crm.EntityLead, ID: acc.LeadID}
			return nil
		}
		// The attempt that accepted the entry may have died before its note, or after
		// writing it but before recording so.
		return e.acceptedNote(ctx, ev, steps, acc.LeadID, events.Once{Resumed: true}, res)
	}
	if ev.Kind != chatbridge.EventChatAccepted || ev.ChatUser == "" {
		return nil
	}
	user, ok := e.opts.chatUser(ev.ChatUser)
	if !ok {
		e.opts.log.Info().Str("chat", chat).Str("agent", ev.ChatUser).Msg("leads: the Jivo agent is not mapped to a CRM user; the entry waits in Unsorted")
		return nil
	}
	entry, accepted, err := e.crm.AcceptUnsorted(ctx, string(uid), user, p.Target.StatusID)
	if err != nil {
		return fmt.Errorf("accept Unsorted entry %s as user %d: %w", uid, user, err)
	}
	b, _ := json.Marshal(entry)
	if err := steps.Record(ctx, "accepted", b); err != nil {
		return fmt.Errorf("save accepted: %w", err)
	}
	if !accepted {
		// A manager decided in amoCRM first; that decision stands.
		return nil
	}
	res.Accepted, res.Responsible, res.ContactID, res.LeadID = true, user, entry.ContactID, entry.LeadID
	if entry.LeadID == 0 {
		return nil
	}
	return e.acceptedNote(ctx, ev, steps, entry.LeadID, events.Once{}, res)
}

// acceptedNote adds the chat's note to the deal its accepted Unsorted entry became.
func (e *Engine) acceptedNote(ctx context.Context, ev chatbridge.Event, steps events.Steps, lead int64, how events.Once, res *Result) error {
	target := EntityRef{Entity: crm.EntityLead, ID: lead}
	ran, err := e.noteOnce(ctx, steps, "note", how, target, e.summary(ev))
	if err != nil {
		return err
	}
	res.NoteOn, res.Repeated = &target, ran != events.RanNow
	e.ran(res, steps, "note", ran)
	return nil
}

func visitorEmail(ev chatbridge.Event) string {
	if ev.Visitor == nil {
		return ""
	}
	return strings.TrimSpace(ev.Visitor.Email)
}

func visitorUID(ev chatbridge.Event) string {
	if ev.Visitor != nil && ev.Visitor.Number != "" {
		return ev.Visitor.Number
	}
	return ""
}

// ran notes on res what became of a step, and says so when it was found in amoCRM: an
// attempt was killed after writing it and before recording it.
func (e *Engine) ran(res *Result, steps events.Steps, step string, ran events.Ran) {
	if ran != events.RanAdopted {
		return
	}
	res.Adopted = true
	e.opts.log.Info().Str("step", steps.Key(step)).
		Msg("leads: found in amoCRM what an interrupted attempt wrote without recording it; not writing it again")
}
