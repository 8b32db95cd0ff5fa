package chatbridge

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
)

// OnCRMChange is the event dispatcher's handler of CRM changes (events.CRMChanges):
// HandleCRMChange of the change as the queue stored it.
func (s *Sync) OnCRMChange(ctx context.Context, ch events.CRMChange) error {
	res, err := s.HandleCRMChange(ctx, crm.ResponsibleChange(ch))
	if s.assigned != nil {
		s.assigned(ch.Responsible, ChatWrites(res))
	}
	return err
}

// HandleCRMChange syncs a responsible change the CRM reported (an amoCRM webhook) to the
// chats of the entity's client: the change's new responsible, mapped to each platform's
// chat user, is assigned to every chat of the client that has someone else.
//
// Nothing is written when the entity type is not selected in chat.crm_to_chat, when
// crmlink's CRM user made the change or it matches crmlink's own recent write (echo), or
// when a later change for the client was already applied (stale): with several entity
// types selected the most recently changed one wins, by the change's At.
func (s *Sync) HandleCRMChange(ctx context.Context, ch crm.ResponsibleChange) (res Result, err error) {
	ch.Entity = entityAlias(ch.Entity)
	defer func() {
		s.logResult(s.logEvent(err).Str("direction", "crm_to_chat").Str("entity", string(ch.Entity)).Int64("id", ch.ID).
			Int64("responsible", int64(ch.Responsible)).Int64("modified_by", int64(ch.ModifiedBy)), res, err)
	}()
	switch {
	case !s.cfg.CRMToChat.Enabled:
		return result(OutcomeIgnored, "chat.crm_to_chat is off"), nil
	case !slices.Contains(s.crmToChat, ch.Entity):
		return result(OutcomeIgnored, "%s is not selected in chat.crm_to_chat.entities", ch.Entity), nil
	case ch.ID <= 0:
		return Result{}, fmt.Errorf("chatbridge: responsible change of %s %d: no entity id", ch.Entity, ch.ID)
	case ch.Responsible <= 0:
		return result(OutcomeIgnored, "the change leaves %s %d without a responsible", ch.Entity, ch.ID), nil
	case s.cfg.CRMUserID != 0 && ch.ModifiedBy == s.cfg.CRMUserID:
		return result(OutcomeEcho, "made by crmlink's CRM user %d", ch.ModifiedBy), nil
	}
	now := s.now()
	target := crmTarget(ch.Entity, ch.ID)
	if echo, err := s.echo(ctx, target, userValue(ch.Responsible), now); err != nil {
		return Result{}, err
	} else if echo {
		return result(OutcomeEcho, "crmlink set %s to user %d within the guard window", target, ch.Responsible), nil
	}
	at := ch.At
	if at.IsZero() {
		at = now
	}
	if _, err := s.guard.Advance(ctx, changedKey(ch.Entity, ch.ID), at, changeTimeKeep); err != nil {
		return Result{}, err
	}
	contacts, why, err := s.contactsOf(ctx, ch.Entity, ch.ID)
	if err != nil {
		return Result{}, err
	}
	if len(contacts) == 0 {
		return result(OutcomeNoClient, "%s", why), nil
	}
	fresh, err := s.current(ctx, contacts, at)
	if err != nil {
		return Result{}, err
	}
	if len(fresh) == 0 {
		return result(OutcomeStale, "a change newer than %s for the client of %s %d was already applied", at.UTC().Format("15:04:05.000"), ch.Entity, ch.ID), nil
	}
	return s.assignChats(ctx, fresh, ch.Responsible, "")
}

// contactsOf returns the contacts whose chats follow an entity: the contact itself, a
// lead's contacts, a company's contacts. why says what is missing when there are none.
func (s *Sync) contactsOf(ctx context.Context, e crm.EntityType, id int64) ([]crm.Contact, string, error) {
	var ids []int64
	switch e {
	case crm.EntityContact:
		ids = []int64{id}
	case crm.EntityLead, crm.EntityCompany:
		if s.links == nil {
			return nil, fmt.Sprintf("no Links configured: crm.Directory cannot list the contacts of %s %d", e, id), nil
		}
		var err error
		if e == crm.EntityLead {
			ids, err = s.links.LeadContacts(ctx, id)
		} else {
			ids, err = s.links.CompanyContacts(ctx, id)
		}
		if err != nil {
			return nil, "", fmt.Errorf("chatbridge: contacts of %s %d: %w", e, id, err)
		}
	default:
		return nil, fmt.Sprintf("entity type %q has no contacts", e), nil
	}
	var out []crm.Contact
	for _, cid := range ids {
		c, err := s.dir.Contact(ctx, cid)
		if errors.Is(err, crm.ErrNotFound) {
			continue // deleted since the link was read
		}
		if err != nil {
			return nil, "", fmt.Errorf("chatbridge: contact %d: %w", cid, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Sprintf("%s %d has no contacts", e, id), nil
	}
	return out, "", nil
}
