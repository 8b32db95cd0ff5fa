package chatbridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmlink/crmlink/crm"
)

// ErrForbidden: the acting user's chat role does not allow the change (Permission.Reason
// says why).
var ErrForbidden = errors.New("chatbridge: not allowed by the chat role")

// ErrBadTarget: the new responsible cannot take chats (not in chat.users, or quality
// control, who writes none).
var ErrBadTarget = errors.New("chatbridge: the new responsible cannot take the client's chats")

// Reassignment is the answer to Reassign: who may, and what changed on each side.
type Reassignment struct {
	Permission Permission `json:"permission"`
	CRM        Result     `json:"crm"`
	Chats      Result     `json:"chats"`
}

// Reassign gives a client (found by phone) to another CRM user on both sides at once, on
// behalf of `by`: the selected chat-to-CRM entities (contact, open deals, company) and
// every chat on the synced platforms. The role table decides: a supervisor may reassign
// any client, a manager only a client they are responsible for, quality control none
// (ErrForbidden). Every write is marked, so the webhooks it causes are not synced back.
func (s *Sync) Reassign(ctx context.Context, access *Access, by crm.UserID, phone crm.Phone, to crm.UserID) (Reassignment, error) {
	var out Reassignment
	perm, err := access.Check(ctx, by, phone)
	if err != nil {
		return out, err
	}
	out.Permission = perm
	if !perm.Write {
		return out, fmt.Errorf("%w: %s", ErrForbidden, perm.Reason)
	}
	switch role, ok := s.users.Role(to); {
	case !ok:
		return out, fmt.Errorf("%w: CRM user %d is not in chat.users", ErrBadTarget, to)
	case role == RoleQualityControl:
		return out, fmt.Errorf("%w: CRM user %d is quality control, who writes in no chat", ErrBadTarget, to)
	}
	contacts, err := s.dir.FindContactsByPhone(ctx, phone)
	if err != nil {
		return out, fmt.Errorf("chatbridge: contacts with %s: %w", phone, err)
	}
	if len(contacts) == 0 {
		out.CRM = result(OutcomeNoClient, "no contact has %s", phone)
		return out, nil
	}
	now := s.now()
	// The reassignment is the client's latest change: changes older than it are stale.
	if _, err := s.current(ctx, contacts, now); err != nil {
		return out, err
	}
	targets, err := s.entitiesOf(ctx, contacts, s.chatToCRM)
	if err != nil {
		return out, err
	}
	var crmErr error
	out.CRM, crmErr = s.setCRM(ctx, targets, to, now, now)
	if out.CRM.Reason == "" {
		out.CRM.Reason = fmt.Sprintf("%s on %d of %d selected entities", out.CRM.Outcome, len(out.CRM.Writes), len(targets))
	}
	var chatErr error
	out.Chats, chatErr = s.assignChats(ctx, contacts, to, "")
	s.log.Info().Int64("by", int64(by)).Str("phone", string(phone)).Int64("to", int64(to)).
		Str("crm", string(out.CRM.Outcome)).Str("chats", string(out.Chats.Outcome)).Msg("client reassigned through crmlink")
	return out, errors.Join(crmErr, chatErr)
}
