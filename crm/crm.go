// Package crm holds the CRM domain (users, contacts, companies, leads, phones) and the
// interfaces the rest of crmlink depends on, so that routing and the rules engine never
// import a concrete CRM client.
package crm

import (
	"context"
	"errors"
	"time"
)

// UserID identifies a CRM user (a manager). Zero means "nobody".
type UserID int64

// Lead statuses that amoCRM reserves in every pipeline: a lead in one of them is closed.
const (
	StatusWon  int64 = 142
	StatusLost int64 = 143
)

// EntityType names the CRM entity a responsible user belongs to.
type EntityType string

const (
	EntityLead    EntityType = "lead"
	EntityContact EntityType = "contact"
	EntityCompany EntityType = "company"
)

// User is a CRM account user.
type User struct {
	ID     UserID
	Name   string
	Email  string
	Active bool
}

// Contact is a person in the CRM with the phones stored on its card.
type Contact struct {
	ID          int64
	Name        string
	Responsible UserID
	// Phones as written on the card (not normalised).
	Phones    []string
	CompanyID int64
	LeadIDs   []int64
	UpdatedAt time.Time
}

// Company is an organisation in the CRM.
type Company struct {
	ID          int64
	Name        string
	Responsible UserID
	UpdatedAt   time.Time
}

// Lead is a deal.
type Lead struct {
	ID          int64
	Name        string
	StatusID    int64
	PipelineID  int64
	Responsible UserID
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Open reports whether the lead is neither won nor lost.
func (l Lead) Open() bool { return l.StatusID != StatusWon && l.StatusID != StatusLost }

// ResponsibleChange is what the CRM reports when an entity gets a new responsible user.
type ResponsibleChange struct {
	Entity         EntityType
	ID             int64
	Responsible    UserID
	OldResponsible UserID
	// ModifiedBy is the user who made the change; crmlink's own integration user lets the
	// chat sync recognise its own writes.
	ModifiedBy UserID
	At         time.Time
}

// Directory is the read side of a CRM used on the call path. Every method honours the
// context deadline; an empty result is not an error.
type Directory interface {
	// FindContactsByPhone returns the contacts whose phone field holds the number (E.164).
	FindContactsByPhone(ctx context.Context, phone Phone) ([]Contact, error)
	// Leads reads leads by id, open and closed; ids the CRM does not know are left out. The
	// ids come from Contact.LeadIDs, so reading a found contact's leads costs no second
	// read of the contact; no ids, no request.
	Leads(ctx context.Context, ids []int64) ([]Lead, error)
	// Contact reads one contact by id.
	Contact(ctx context.Context, id int64) (Contact, error)
	// Company reads one company by id.
	Company(ctx context.Context, id int64) (Company, error)
	// Users lists the account users.
	Users(ctx context.Context) ([]User, error)
}

// Errors a CRM client reports, wrapped with context; test them with errors.Is.
var (
	ErrNotFound     = errors.New("not found in CRM")
	ErrUnauthorized = errors.New("CRM rejected the credentials (401)")
	ErrForbidden    = errors.New("CRM denied access (403)")
	ErrRateLimited  = errors.New("CRM rate limit exceeded (429)")
	ErrUnavailable  = errors.New("CRM unavailable")
)
