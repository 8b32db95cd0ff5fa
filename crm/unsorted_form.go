package crm

import "time"

// FieldValue is a value of a contact's custom field named by the CRM's field id (an INN,
// a client number): fields the account's administrator added, which have no code.
type FieldValue struct {
	FieldID int64
	Value   string
}

// UnsortedForm is an amoCRM "Unsorted" entry of category forms: a request from a site (a
// chat, a form) waiting for a manager to accept it, which makes its contact and deal real
// and the accepting manager their responsible, or to decline it.
type UnsortedForm struct {
	// UID is the entry's source_uid: amoCRM refuses a second entry with it while the first
	// waits in Unsorted.
	UID        string
	SourceName string
	PipelineID int64
	// FormID and FormName name the form (or chat widget) the request came from; FormPage is
	// the page it was sent from.
	FormID   string
	FormName string
	FormPage string
	IP       string
	Referer  string
	// VisitorUID is the site's id of the visitor.
	VisitorUID string
	SentAt     time.Time
	Contact    NewContact
	LeadName   string
	Tags       []string
}

// UnsortedEntry is an Unsorted entry as the CRM answers for it: its uid (the CRM's own, not
// the source uid) and, once accepted, the lead and contact it became.
type UnsortedEntry struct {
	UID       string
	LeadID    int64
	ContactID int64
}
