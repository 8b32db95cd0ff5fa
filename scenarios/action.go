package scenarios

import (
	"encoding/json"
	"fmt"

	"github.com/crmlink/crmlink/crm"
)

// Kind names what an action does. A plan holds each kind at most once, so an outcome's id
// and the kind make the action's idempotency key.
type Kind string

const (
	KindContact  Kind = "contact"
	KindLead     Kind = "lead"
	KindUnsorted Kind = "unsorted"
	KindTask     Kind = "task"
	KindNote     Kind = "note"
	KindAccept   Kind = "accept_unsorted"
)

// Action is one CRM write of a plan: CreateContact, CreateLead, AddUnsorted,
// AcceptUnsorted, CreateTask or AddCallNote. Actions are plain values, so a plan can be compared in tests and stored.
type Action interface {
	Kind() Kind
	isAction()
}

// Ref points at the CRM entity an action attaches to: one that exists (ID), or the one an
// earlier action of the same plan creates (Created), whose id is known only once it ran.
type Ref struct {
	Entity  crm.EntityType
	ID      int64 `json:",omitempty"`
	Created Kind  `json:",omitempty"`
}

// Existing refers to an entity already in the CRM.
func Existing(e crm.EntityType, id int64) Ref { return Ref{Entity: e, ID: id} }

// CreatedBy refers to the entity the plan's action of kind k creates.
func CreatedBy(e crm.EntityType, k Kind) Ref { return Ref{Entity: e, Created: k} }

func (r Ref) String() string {
	if r.Created != "" {
		return fmt.Sprintf("the new %s", r.Entity)
	}
	return fmt.Sprintf("%s %d", r.Entity, r.ID)
}

// CreateContact creates the client's contact.
type CreateContact struct {
	Contact crm.NewContact
}

// CreateLead creates a deal linked to Contact; Lead.ContactIDs is filled in when it runs.
type CreateLead struct {
	Lead    crm.NewLead
	Contact Ref
}

// AddUnsorted creates an amoCRM Unsorted (sip) entry for a new caller.
type AddUnsorted struct {
	Call crm.UnsortedCall
}

// AcceptUnsorted accepts the number's waiting Unsorted entry for an answered call (mode
// unsorted_until_answered): the entry's contact and deal become the client's, responsible
// User, instead of a second contact beside the entry. The entities it yields stand for
// KindContact and KindLead in the actions after it. Phone finds the client when a manager
// decided on the entry first.
type AcceptUnsorted struct {
	UID      string
	User     crm.UserID
	StatusID int64
	Phone    crm.Phone
}

// CreateTask creates a call-back task on On; Task.Entity and EntityID are filled in when it
// runs. Phone is the client's number, under which the engine remembers the deadline.
type CreateTask struct {
	Task  crm.NewTask
	On    Ref
	Phone crm.Phone
}

// AddCallNote adds a call_in/call_out note to On; Note.Entity and EntityID are filled in
// when it runs.
type AddCallNote struct {
	Note crm.CallNote
	On   Ref
}

func (CreateContact) Kind() Kind  { return KindContact }
func (CreateLead) Kind() Kind     { return KindLead }
func (AddUnsorted) Kind() Kind    { return KindUnsorted }
func (AcceptUnsorted) Kind() Kind { return KindAccept }
func (CreateTask) Kind() Kind     { return KindTask }
func (AddCallNote) Kind() Kind    { return KindNote }

func (CreateContact) isAction()  {}
func (CreateLead) isAction()     {}
func (AddUnsorted) isAction()    {}
func (AcceptUnsorted) isAction() {}
func (CreateTask) isAction()     {}
func (AddCallNote) isAction()    {}

// ActionKey is the idempotency key of an outcome's action of kind k: its step's key in the
// outcome's executor (Engine.steps), which stores the plan itself under "call:<id>:plan".
func ActionKey(outcomeID string, k Kind) string { return outcomeKey(outcomeID) + ":" + string(k) }

// outcomeKey prefixes the State keys of an outcome's plan and actions.
func outcomeKey(outcomeID string) string { return "call:" + outcomeID }

// storedPlan is a plan as the State keeps it between attempts.
type storedPlan struct {
	Version int
	Plan    planned
	Actions []storedAction
}

// storedAction tags an Action with its kind for JSON.
type storedAction struct {
	Kind     Kind
	Contact  *CreateContact  `json:",omitempty"`
	Lead     *CreateLead     `json:",omitempty"`
	Unsorted *AddUnsorted    `json:",omitempty"`
	Accept   *AcceptUnsorted `json:",omitempty"`
	Task     *CreateTask     `json:",omitempty"`
	Note     *AddCallNote    `json:",omitempty"`
}

const storedPlanVersion = 1

func encodePlan(p planned) ([]byte, error) {
	sp := storedPlan{Version: storedPlanVersion, Plan: p}
	sp.Plan.Actions = nil
	for _, a := range p.Actions {
		s := storedAction{Kind: a.Kind()}
		switch a := a.(type) {
		case CreateContact:
			s.Contact = &a
		case CreateLead:
			s.Lead = &a
		case AddUnsorted:
			s.Unsorted = &a
		case AcceptUnsorted:
			s.Accept = &a
		case CreateTask:
			s.Task = &a
		case AddCallNote:
			s.Note = &a
		}
		sp.Actions = append(sp.Actions, s)
	}
	return json.Marshal(sp)
}

func decodePlan(b []byte) (planned, error) {
	var sp storedPlan
	if err := json.Unmarshal(b, &sp); err != nil {
		return planned{}, err
	}
	if sp.Version != storedPlanVersion {
		return planned{}, fmt.Errorf("stored plan version %d, this crmlink reads %d", sp.Version, storedPlanVersion)
	}
	p := sp.Plan
	for i, s := range sp.Actions {
		var a Action
		switch {
		case s.Kind == KindContact && s.Contact != nil:
			a = *s.Contact
		case s.Kind == KindLead && s.Lead != nil:
			a = *s.Lead
		case s.Kind == KindUnsorted && s.Unsorted != nil:
			a = *s.Unsorted
		case s.Kind == KindAccept && s.Accept != nil:
			a = *s.Accept
		case s.Kind == KindTask && s.Task != nil:
			a = *s.Task
		case s.Kind == KindNote && s.Note != nil:
			a = *s.Note
		default:
			return planned{}, fmt.Errorf("stored action %d: kind %q without its body", i, s.Kind)
		}
		p.Actions = append(p.Actions, a)
	}
	return p, nil
}
