package crm

import (
	"context"
	"time"
)

// The write side of a CRM, used only on the event path (call outcomes, chat events), never
// while a call is being set up. amoCRM has no idempotency key for what it creates: a
// RequestID is only echoed back to match a batch's answers to its items, and a second call
// note with the same Uniq is a second note. What keeps a retried event from creating an
// entity twice is the event path's record of each step (events.Steps) and, for the one step
// an attempt killed between a write and its record may have written, a lookup before the
// write (events.Once). Only Unsorted entries are refused twice by amoCRM itself, while the
// first one with the same source_uid waits.

// NewContact is a contact to create.
type NewContact struct {
	Name   string
	Phones []Phone
	Emails []string
	// Fields are values of the account's own custom fields (by field id).
	Fields      []FieldValue
	Responsible UserID
	// RequestID is echoed back by amoCRM and lets a writer match results to requests;
	// amoCRM does not refuse a second contact with the same one.
	RequestID string
}

// NewLead is a deal to create, linked to existing contacts.
type NewLead struct {
	Name        string
	PipelineID  int64 // 0: the account's main pipeline
	StatusID    int64 // 0: the pipeline's first stage
	Responsible UserID
	ContactIDs  []int64
	Tags        []string
	RequestID   string
}

// UnsortedCall is an amoCRM "Unsorted" entry of category sip: an incoming call waiting for
// a manager to accept (creating contact and deal) or decline it.
type UnsortedCall struct {
	// UID is the entry's source_uid: amoCRM refuses a second entry with it while the first
	// waits in Unsorted.
	UID        string
	SourceName string
	PipelineID int64
	Phone      Phone
	CalledAt   time.Time
	Duration   time.Duration
	// Link is the call recording URL, if any.
	Link        string
	Responsible UserID
	ContactName string
	LeadName    string
}

// TaskTypeCall is amoCRM's "call back" task type.
const TaskTypeCall = 1

// NewTask is a task to create on an entity.
type NewTask struct {
	Text        string
	TypeID      int64
	Responsible UserID
	// CreatedBy credits the task to a manager (a missed call's: whose phone rang first);
	// 0 leaves it to the integration's user.
	CreatedBy    UserID
	Entity       EntityType
	EntityID     int64
	CompleteTill time.Time
	RequestID    string
}

// Task is an existing task.
type Task struct {
	ID           int64
	Text         string
	TypeID       int64
	Responsible  UserID
	Entity       EntityType
	EntityID     int64
	CompleteTill time.Time
	Completed    bool
}

// CallDirection is inbound or outbound.
type CallDirection string

const (
	CallIn  CallDirection = "inbound"
	CallOut CallDirection = "outbound"
)

// CallStatus is amoCRM's call_status of a call note.
type CallStatus int

const (
	CallStatusVoicemail  CallStatus = 1
	CallStatusCallLater  CallStatus = 2
	CallStatusAbsent     CallStatus = 3
	CallStatusAnswered   CallStatus = 4
	CallStatusWrongNum   CallStatus = 5
	CallStatusNotReached CallStatus = 6
	CallStatusBusy       CallStatus = 7
)

// CallNote is a call_in / call_out note on an entity.
type CallNote struct {
	Entity    EntityType
	EntityID  int64
	Direction CallDirection
	// Uniq is the call's id on the note (the call's linkedid): amoCRM shows it but does not
	// refuse a second note with the same one (CallNoteExists looks for it).
	Uniq     string
	Phone    Phone
	Duration time.Duration
	Status   CallStatus
	Result   string // free text shown on the card, e.g. "Not reached"
	Link     string // recording URL
	// Responsible is the manager the call is credited to (created_by and
	// responsible_user_id): who talked, or for a missed call whose phone rang first.
	Responsible UserID
	Source      string
}

// Writer creates CRM entities. Slices let an implementation batch (amoCRM takes at most
// 50 entities a request); results are in the order of the input.
type Writer interface {
	CreateContacts(ctx context.Context, cs []NewContact) ([]int64, error)
	CreateLeads(ctx context.Context, ls []NewLead) ([]int64, error)
	// AddUnsortedCalls creates Unsorted entries; an entry whose UID already exists is not
	// created again.
	AddUnsortedCalls(ctx context.Context, us []UnsortedCall) error
	// PendingUnsorted returns the uid of an Unsorted entry for the phone that still waits
	// for a decision; "" when none does.
	PendingUnsorted(ctx context.Context, phone Phone) (uid string, err error)
	// AcceptUnsorted accepts a waiting Unsorted entry as the user would (statusID 0: the
	// pipeline's first stage): its contact and lead join the account. accepted is false,
	// with no error, when the entry was decided (accepted or declined) already.
	AcceptUnsorted(ctx context.Context, uid string, user UserID, statusID int64) (entry UnsortedEntry, accepted bool, err error)
	CreateTasks(ctx context.Context, ts []NewTask) ([]int64, error)
	// OpenTasks lists the entity's tasks that are not completed.
	OpenTasks(ctx context.Context, entity EntityType, id int64) ([]Task, error)
	AddCallNotes(ctx context.Context, ns []CallNote) error
	// CallNoteExists reports whether the entity already has a call note with this uniq:
	// a retry whose first attempt's answer was lost asks before writing the note again.
	CallNoteExists(ctx context.Context, entity EntityType, id int64, uniq string) (bool, error)
	// AddTextNote adds a plain note ("common") to an entity.
	AddTextNote(ctx context.Context, entity EntityType, id int64, text string) error
	// SetResponsible changes an entity's responsible user.
	SetResponsible(ctx context.Context, entity EntityType, id int64, user UserID) error
}
