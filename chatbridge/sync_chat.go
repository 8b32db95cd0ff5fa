package chatbridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// HandleChatEvent applies a chat event to the CRM or the chats:
//
//   - EventResponsibleAssigned (chat to CRM): the chat user's CRM user becomes the
//     responsible of every entity selected in chat.chat_to_crm that belongs to the
//     client's contacts (found by phone): the contact, its open leads, its company.
//   - EventDialogOpened, and an inbound EventMessage after chat.dialog_idle of quiet (CRM
//     to chat): the client's chats on that platform take the responsible of the selected
//     entity that changed last.
//
// Other kinds, and platforms not registered with WithPlatform, are ignored.
func (s *Sync) HandleChatEvent(ctx context.Context, e Event) (res Result, err error) {
	defer func() {
		s.logResult(s.logEvent(err).Str("direction", directionOf(e.Kind)).Str("event", e.ID).Str("platform", string(e.Platform)).
			Str("kind", string(e.Kind)).Str("chat", e.Chat.ID).Str("chat_user", e.ChatUser), res, err)
	}()
	if _, ok := s.platforms[e.Platform]; !ok {
		return result(OutcomeIgnored, "platform %q is not synced", e.Platform), nil
	}
	switch e.Kind {
	case EventResponsibleAssigned:
		return s.chatAssigned(ctx, e)
	case EventDialogOpened:
		return s.dialogOpened(ctx, e)
	case EventMessage:
		if e.Message == nil || !e.Message.Inbound {
			return result(OutcomeIgnored, "an employee's message changes no responsible"), nil
		}
		opened, err := s.opensDialog(ctx, e)
		if err != nil || !opened {
			return result(OutcomeIgnored, "the dialog is already open"), err
		}
		return s.dialogOpened(ctx, e)
	}
	return result(OutcomeIgnored, "%s events change no responsible", e.Kind), nil
}

func directionOf(k EventKind) string {
	if k == EventResponsibleAssigned {
		return "chat_to_crm"
	}
	return "crm_to_chat"
}

// opensDialog reports whether an inbound message comes after chat.dialog_idle of quiet
// in its chat (or is the first seen), and records it as the chat's latest message.
func (s *Sync) opensDialog(ctx context.Context, e Event) (bool, error) {
	chat := e.Chat.ID
	if chat == "" {
		chat = e.Chat.ChatType + ":" + e.Chat.ChatID
	}
	at := e.At
	if at.IsZero() {
		at = s.now()
	}
	prev, err := s.guard.Swap(ctx, "dialog:"+string(e.Platform)+":"+chat, at, s.cfg.DialogIdle)
	if err != nil {
		return false, err
	}
	return prev.IsZero() || at.Sub(prev) >= s.cfg.DialogIdle, nil
}

// chatAssigned is chat to CRM.
func (s *Sync) chatAssigned(ctx context.Context, e Event) (Result, error) {
	if !s.cfg.ChatToCRM.Enabled {
		return result(OutcomeIgnored, "chat.chat_to_crm is off"), nil
	}
	if e.ChatUser == "" {
		return result(OutcomeIgnored, "the chat was left without a responsible"), nil
	}
	now := s.now()
	if e.Chat.ID != "" {
		if e.Chat.Platform == "" {
			e.Chat.Platform = e.Platform
		}
		echo, err := s.echo(ctx, e.Chat.Key(), e.ChatUser, now)
		if err != nil {
			return Result{}, err
		}
		if echo {
			return result(OutcomeEcho, "crmlink assigned %s to %s within the guard window", e.ChatUser, e.Chat.Key()), nil
		}
	}
	crmUser, ok := s.users.CRMUser(e.Platform, e.ChatUser)
	if !ok {
		return result(OutcomeUnmapped, "%s user %q is not in chat.users", e.Platform, e.ChatUser), nil
	}
	if e.Phone == "" {
		return result(OutcomeNoClient, "the event has no readable client phone (raw %q)", e.RawPhone), nil
	}
	contacts, err := s.dir.FindContactsByPhone(ctx, e.Phone)
	if err != nil {
		return Result{}, fmt.Errorf("chatbridge: contacts with %s: %w", e.Phone, err)
	}
	if len(contacts) == 0 {
		return result(OutcomeNoClient, "no contact has %s", e.Phone), nil
	}
	at := e.At
	if at.IsZero() {
		at = now
	}
	fresh, err := s.current(ctx, contacts, at)
	if err != nil {
		return Result{}, err
	}
	if len(fresh) == 0 {
		return result(OutcomeStale, "a change newer than %s for %s was already applied", at.UTC().Format("15:04:05.000"), e.Phone), nil
	}
	targets, err := s.entitiesOf(ctx, fresh, s.chatToCRM)
	if err != nil {
		return Result{}, err
	}
	res, err := s.setCRM(ctx, targets, crmUser, at, now)
	switch res.Outcome {
	case OutcomeSynced:
		res.Reason = fmt.Sprintf("%s user %s (CRM user %d) set on %d entities", e.Platform, e.ChatUser, crmUser, len(res.Writes))
	case OutcomeNoClient:
		res.Reason = fmt.Sprintf("the contacts of %s have none of the selected entities", e.Phone)
	case OutcomeInSync:
		res.Reason = fmt.Sprintf("the %d selected entities of %s already have CRM user %d", len(targets), e.Phone, crmUser)
	}
	return res, err
}

// setCRM makes crmUser the responsible of the targets that have another, marking each
// before writing so that amoCRM's webhook of the change is recognised as crmlink's own.
func (s *Sync) setCRM(ctx context.Context, targets []candidate, crmUser crm.UserID, at, now time.Time) (Result, error) {
	var res Result
	var errs []error
	for _, t := range targets {
		if t.responsible == crmUser {
			continue
		}
		if len(res.Writes) >= s.cfg.MaxWrites {
			res.Truncated = true
			break
		}
		key := crmTarget(t.entity, t.id)
		// Mark before writing: amoCRM posts the webhook of the change before it answers.
		if err := s.guard.Mark(ctx, key, userValue(crmUser), now.Add(s.cfg.GuardWindow)); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.w.SetResponsible(ctx, t.entity, t.id, crmUser); err != nil {
			errs = append(errs, fmt.Errorf("chatbridge: set %s responsible %d: %w", key, crmUser, err))
			continue
		}
		// The entity changed now: a dialog opening later takes its responsible.
		if _, err := s.guard.Advance(ctx, changedKey(t.entity, t.id), at, changeTimeKeep); err != nil {
			errs = append(errs, err)
		}
		res.Writes = append(res.Writes, Write{Target: key, Value: userValue(crmUser)})
	}
	switch {
	case len(res.Writes) > 0:
		res.Outcome = OutcomeSynced
	case len(errs) > 0:
		res = result(OutcomeFailed, "no entity could be changed")
	case len(targets) == 0:
		res.Outcome = OutcomeNoClient
	default:
		res.Outcome = OutcomeInSync
	}
	return res, errors.Join(errs...)
}

// dialogOpened is CRM to chat for one platform's chats of the client.
func (s *Sync) dialogOpened(ctx context.Context, e Event) (Result, error) {
	if !s.cfg.CRMToChat.Enabled {
		return result(OutcomeIgnored, "chat.crm_to_chat is off"), nil
	}
	if e.Phone == "" {
		return result(OutcomeNoClient, "the event has no readable client phone (raw %q)", e.RawPhone), nil
	}
	contacts, err := s.dir.FindContactsByPhone(ctx, e.Phone)
	if err != nil {
		return Result{}, fmt.Errorf("chatbridge: contacts with %s: %w", e.Phone, err)
	}
	if len(contacts) == 0 {
		return result(OutcomeNoClient, "no contact has %s", e.Phone), nil
	}
	cands, err := s.entitiesOf(ctx, contacts, s.crmToChat)
	if err != nil {
		return Result{}, err
	}
	cands = slices.DeleteFunc(cands, func(c candidate) bool { return c.responsible <= 0 })
	if len(cands) == 0 {
		return result(OutcomeNoClient, "the contacts of %s have no selected entity with a responsible", e.Phone), nil
	}
	for i := range cands {
		if at, ok, err := s.guard.Latest(ctx, changedKey(cands[i].entity, cands[i].id)); err != nil {
			return Result{}, err
		} else if ok && at.After(cands[i].changed) {
			cands[i].changed = at
		}
	}
	slices.SortFunc(cands, byTime(s.crmToChat))
	return s.assignChats(ctx, contacts, cands[0].responsible, e.Platform)
}

// entitiesOf lists the selected entities of the contacts with their responsible and
// last update: the contacts, their open leads, their companies; each once.
func (s *Sync) entitiesOf(ctx context.Context, contacts []crm.Contact, selected []crm.EntityType) ([]candidate, error) {
	var out []candidate
	seen := map[string]bool{}
	add := func(c candidate) {
		if k := crmTarget(c.entity, c.id); !seen[k] {
			seen[k] = true
			out = append(out, c)
		}
	}
	for _, e := range selected {
		switch e {
		case crm.EntityContact:
			for _, c := range contacts {
				add(candidate{entity: e, id: c.ID, responsible: c.Responsible, changed: c.UpdatedAt})
			}
		case crm.EntityLead:
			var ids []int64
			for _, c := range contacts {
				ids = append(ids, c.LeadIDs...)
			}
			slices.Sort(ids)
			leads, err := s.dir.Leads(ctx, slices.Compact(ids))
			if err != nil {
				return nil, fmt.Errorf("chatbridge: leads %v: %w", ids, err)
			}
			for _, l := range leads {
				if l.Open() {
					add(candidate{entity: e, id: l.ID, responsible: l.Responsible, changed: l.UpdatedAt})
				}
			}
		case crm.EntityCompany:
			for _, c := range contacts {
				if c.CompanyID <= 0 || seen[crmTarget(e, c.CompanyID)] {
					continue
				}
				co, err := s.dir.Company(ctx, c.CompanyID)
				if err != nil {
					return nil, fmt.Errorf("chatbridge: company %d: %w", c.CompanyID, err)
				}
				add(candidate{entity: e, id: co.ID, responsible: co.Responsible, changed: co.UpdatedAt})
			}
		}
	}
	return out, nil
}
