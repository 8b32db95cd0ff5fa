package sandbox

import "slices"

// Created is what clients created through the API since the start or the last Reseed, in
// the order of creation, each as it is now: a contact given to another manager shows the
// new responsible, an Unsorted entry whether it was accepted, a task whether it is done.
// Contacts and leads that accepting an Unsorted entry created are listed too; those of an
// entry still pending or declined are only in the entry.
type Created struct {
	Contacts []Contact  `json:"contacts"`
	Leads    []Lead     `json:"leads"`
	Unsorted []Unsorted `json:"unsorted"`
	Tasks    []Task     `json:"tasks"`
	Notes    []Note     `json:"notes"`
}

// UnsortedStatus is where an Unsorted entry stands.
type UnsortedStatus string

const (
	UnsortedPending  UnsortedStatus = "pending"
	UnsortedAccepted UnsortedStatus = "accepted"
	UnsortedDeclined UnsortedStatus = "declined"
)

// Unsorted is an entry of amoCRM's "Unsorted" stage (category sip or forms): a call or a
// site request waiting for a manager to accept it, which turns its contact and lead into
// real ones, or to decline it, which deletes them.
type Unsorted struct {
	UID        string `json:"uid"`
	SourceUID  string `json:"source_uid"`
	SourceName string `json:"source_name"`
	Category   string `json:"category"`
	PipelineID int64  `json:"pipeline_id"`
	CreatedAt  int64  `json:"created_at"`
	// Metadata is the call of a sip entry; Form the request of a forms entry.
	Metadata SipMetadata    `json:"metadata"`
	Form     *FormsMetadata `json:"form,omitempty"`
	Status   UnsortedStatus `json:"status"`
	// Lead and Contact are created by an accept; their ids are handed out with the entry.
	// Contact is nil when the entry came without one.
	Lead    Lead     `json:"lead"`
	Contact *Contact `json:"contact"`
	// DecidedBy is the user who accepted or declined the entry, at DecidedAt.
	DecidedBy int64  `json:"decided_by,omitempty"`
	DecidedAt int64  `json:"decided_at,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// SipMetadata is the call an Unsorted entry of category sip is about.
type SipMetadata struct {
	Phone             string `json:"phone"`
	CalledAt          int64  `json:"called_at"`
	Duration          int64  `json:"duration"`
	Link              string `json:"link,omitempty"`
	ServiceCode       string `json:"service_code,omitempty"`
	Uniq              string `json:"uniq,omitempty"`
	IsCallEventNeeded bool   `json:"is_call_event_needed"`
	// CallResponsible is a user id or a name, as the client sent it.
	CallResponsible string `json:"call_responsible,omitempty"`
	From            string `json:"from,omitempty"`
}

// Task is a task on an entity (or on none).
type Task struct {
	ID                int64  `json:"id"`
	Text              string `json:"text"`
	TaskTypeID        int64  `json:"task_type_id"`
	ResponsibleUserID int64  `json:"responsible_user_id"`
	// EntityType is "leads", "contacts" or "companies" as amoCRM names them; "" for none.
	EntityType   string `json:"entity_type"`
	EntityID     int64  `json:"entity_id"`
	CompleteTill int64  `json:"complete_till"`
	Duration     int64  `json:"duration"`
	IsCompleted  bool   `json:"is_completed"`
	// Result is the text given when the task was completed.
	Result    string `json:"result,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	CreatedBy int64  `json:"created_by"`
	CreatedAt int64  `json:"created_at"`
	UpdatedAt int64  `json:"updated_at"`
}

// Note is a note on an entity. The sandbox keeps every note it is sent: two call notes with
// the same uniq on one entity are two notes, so a test sees a client's duplicate.
type Note struct {
	ID int64 `json:"id"`
	// EntityType is "leads", "contacts" or "companies".
	EntityType        string     `json:"entity_type"`
	EntityID          int64      `json:"entity_id"`
	NoteType          string     `json:"note_type"`
	Params            NoteParams `json:"params"`
	ResponsibleUserID int64      `json:"responsible_user_id"`
	RequestID         string     `json:"request_id,omitempty"`
	CreatedBy         int64      `json:"created_by"`
	CreatedAt         int64      `json:"created_at"`
}

// Note types the sandbox accepts.
const (
	NoteCommon         = "common"
	NoteCallIn         = "call_in"
	NoteCallOut        = "call_out"
	NoteServiceMessage = "service_message"
)

// NoteParams are the params of the note types the sandbox knows: text (common and
// service_message, with service), the call fields (call_in and call_out).
type NoteParams struct {
	Text       string `json:"text,omitempty"`
	Service    string `json:"service,omitempty"`
	Uniq       string `json:"uniq,omitempty"`
	Duration   int64  `json:"duration,omitempty"`
	Source     string `json:"source,omitempty"`
	Link       string `json:"link,omitempty"`
	Phone      string `json:"phone,omitempty"`
	CallStatus int    `json:"call_status,omitempty"`
	CallResult string `json:"call_result,omitempty"`
	// CallResponsible is a user id or a name, as the client sent it.
	CallResponsible string `json:"call_responsible,omitempty"`
}

// CallsByManager counts the call notes (call_in and call_out) by the user they are
// credited to, created_by, the way amoCRM's call report counts a manager's calls: a note
// the integration created without created_by counts for the API user.
func (c Created) CallsByManager() map[int64]int {
	out := map[int64]int{}
	for _, n := range c.Notes {
		if n.NoteType == NoteCallIn || n.NoteType == NoteCallOut {
			out[n.CreatedBy]++
		}
	}
	return out
}

// NotesOn returns the notes on one entity ("leads", "contacts" or "companies"), in order.
func (c Created) NotesOn(entityType string, id int64) []Note {
	var out []Note
	for _, n := range c.Notes {
		if n.EntityType == entityType && n.EntityID == id {
			out = append(out, n)
		}
	}
	return out
}

// TasksOn returns the tasks on one entity ("leads", "contacts" or "companies"), in order.
func (c Created) TasksOn(entityType string, id int64) []Task {
	var out []Task
	for _, t := range c.Tasks {
		if t.EntityType == entityType && t.EntityID == id {
			out = append(out, t)
		}
	}
	return out
}

// createdNow builds the read-back from the current data; s.mu is held.
func (st *store) createdNow() Created {
	out := Created{Contacts: []Contact{}, Leads: []Lead{}, Unsorted: []Unsorted{}, Tasks: []Task{}, Notes: []Note{}}
	for _, id := range st.created.contacts {
		if c := st.contacts[id]; c != nil {
			out.Contacts = append(out.Contacts, cloneContact(*c))
		}
	}
	for _, id := range st.created.leads {
		if l := st.leads[id]; l != nil {
			out.Leads = append(out.Leads, cloneLead(*l))
		}
	}
	for _, uid := range st.created.unsorted {
		if u := st.unsorted[uid]; u != nil {
			out.Unsorted = append(out.Unsorted, u.clone())
		}
	}
	for _, id := range st.created.tasks {
		if t := st.tasks[id]; t != nil {
			out.Tasks = append(out.Tasks, *t)
		}
	}
	for _, id := range st.created.notes {
		if n := st.notes[id]; n != nil {
			out.Notes = append(out.Notes, *n)
		}
	}
	return out
}

func (u *Unsorted) clone() Unsorted {
	c := *u
	c.Lead = cloneLead(u.Lead)
	if u.Form != nil {
		f := *u.Form
		c.Form = &f
	}
	if u.Contact != nil {
		ct := cloneContact(*u.Contact)
		c.Contact = &ct
	}
	return c
}

// addContact stores a new contact and remembers it; s.mu is held.
func (st *store) addContact(c *Contact) {
	st.contacts[c.ID] = c
	st.created.contacts = append(st.created.contacts, c.ID)
}

// addLead stores a new lead, links it to its contacts and remembers it; s.mu is held.
func (st *store) addLead(l *Lead) {
	contacts := slices.Clone(l.ContactIDs)
	l.ContactIDs = nil
	st.tagLead(l)
	st.leads[l.ID] = l
	st.created.leads = append(st.created.leads, l.ID)
	for _, c := range contacts {
		st.link(c, l.ID)
	}
}
