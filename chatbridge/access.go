package chatbridge

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/crmlink/crmlink/crm"
)

// Permission is what one user may do with one client's chats.
type Permission struct {
	User crm.UserID `json:"user"`
	// Role is the user's chat role; empty for a user not in chat.users.
	Role Role `json:"role,omitempty"`
	// Read: the user may see the client's chats; Write: may write in them (answer,
	// reassign).
	Read  bool `json:"read"`
	Write bool `json:"write"`
	// Responsible are the CRM users responsible for the client (the contacts' and their
	// open deals'); filled when the role depends on them.
	Responsible []crm.UserID `json:"responsible,omitempty"`
	// Reason says why, for people and logs.
	Reason string `json:"reason"`
}

// Permit applies the role table: a supervisor sees and writes all chats; quality control
// sees all and writes none; a manager sees and writes the chats of clients they are
// responsible for and nothing else; a user without a role gets nothing.
func Permit(role Role, responsible bool) (read, write bool) {
	switch role {
	case RoleSupervisor:
		return true, true
	case RoleQualityControl:
		return true, false
	case RoleManager:
		return responsible, responsible
	}
	return false, false
}

// Access answers who may see and write which client's chats, from the configured roles
// and the CRM's responsible users. Safe for concurrent use.
type Access struct {
	users *UserMap
	dir   crm.Directory
}

// NewAccess builds an Access over the user map and the CRM that knows who is responsible.
func NewAccess(users *UserMap, dir crm.Directory) *Access {
	return &Access{users: users, dir: dir}
}

// ErrNoClient: the phone given is not a client the CRM knows.
var ErrNoClient = errors.New("chatbridge: no CRM contact has this phone")

// Check returns the user's permission on the chats of the client with the phone. Only a
// manager's answer needs the CRM (one contact search, one read of its leads); a user not
// in chat.users is refused without asking it. A phone no contact has gives a manager no
// access (Reason says so) and is not an error.
func (a *Access) Check(ctx context.Context, user crm.UserID, phone crm.Phone) (Permission, error) {
	p := Permission{User: user}
	role, ok := a.users.Role(user)
	if !ok {
		p.Reason = fmt.Sprintf("CRM user %d is not in chat.users: no chat role", user)
		return p, nil
	}
	p.Role = role
	if role != RoleManager {
		p.Read, p.Write = Permit(role, false)
		p.Reason = map[Role]string{
			RoleSupervisor:     "supervisor: sees and writes all chats",
			RoleQualityControl: "quality control: sees all chats, writes none",
		}[role]
		return p, nil
	}
	resp, err := a.responsible(ctx, phone)
	if err != nil {
		return Permission{}, err
	}
	p.Responsible = resp
	p.Read, p.Write = Permit(role, slices.Contains(resp, user))
	switch {
	case len(resp) == 0:
		p.Reason = "manager: no CRM contact has this phone, so the client is nobody's yet"
	case p.Read:
		p.Reason = "manager: responsible for this client"
	default:
		p.Reason = "manager: not responsible for this client"
	}
	return p, nil
}

// responsible lists the users responsible for the client: each contact's and each of
// their open deals'.
func (a *Access) responsible(ctx context.Context, phone crm.Phone) ([]crm.UserID, error) {
	contacts, err := a.dir.FindContactsByPhone(ctx, phone)
	if err != nil {
		return nil, fmt.Errorf("chat access for %s: find contacts: %w", phone, err)
	}
	var out []crm.UserID
	add := func(u crm.UserID) {
		if u > 0 && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	var leadIDs []int64
	for _, c := range contacts {
		add(c.Responsible)
		leadIDs = append(leadIDs, c.LeadIDs...)
	}
	leads, err := a.dir.Leads(ctx, leadIDs)
	if err != nil {
		return nil, fmt.Errorf("chat access for %s: read deals: %w", phone, err)
	}
	for _, l := range leads {
		if l.Open() {
			add(l.Responsible)
		}
	}
	return out, nil
}
