package amocrm

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// Account names the amoCRM account a webhook came from.
type Account struct {
	ID        int64
	Subdomain string
}

// ErrWebhook marks a webhook body that is not an amoCRM webhook or carries bad values.
var ErrWebhook = errors.New("amocrm webhook")

// webhookActions are the events whose entries carry the entity's current responsible user.
var webhookActions = map[string]int{"responsible": 0, "update": 1, "add": 2}

// webhookEntities maps the top-level keys to entities; contacts and companies share
// "contacts" and are told apart by the entry's type.
var webhookEntities = map[string]int{"leads": 0, "contacts": 1, "companies": 2}

// entryRef is one {entity}[{action}][{i}] entry of a webhook.
type entryRef struct {
	top, action string
	index       int
}

// ParseWebhook reads an amoCRM webhook (form-encoded, PHP-style keys such as
// leads[responsible][0][responsible_user_id]) and returns the responsible-user changes it
// reports, in the order of the entries. An entry yields a change when it carries
// responsible_user_id and, if it also carries old_responsible_user_id, the two differ;
// OldResponsible is zero when amoCRM did not say. Other events (tasks, notes, unsorted)
// parse to no changes.
func ParseWebhook(form url.Values) ([]crm.ResponsibleChange, Account, error) {
	entries := map[entryRef]map[string]string{}
	var acc Account
	recognised := false
	for key, vals := range form {
		name, segs, ok := splitKey(key)
		if !ok || len(vals) == 0 {
			continue
		}
		if name == "account" {
			recognised = true
			if err := acc.set(segs, vals[0]); err != nil {
				return nil, Account{}, err
			}
			continue
		}
		if _, known := webhookEntities[name]; !known {
			continue
		}
		recognised = true
		if len(segs) != 3 {
			continue // nested values such as custom_fields are not needed here
		}
		if _, known := webhookActions[segs[0]]; !known {
			continue
		}
		i, err := strconv.Atoi(segs[1])
		if err != nil || i < 0 || i > 1<<20 {
			return nil, Account{}, fmt.Errorf("%w: key %q: entry index is not a number", ErrWebhook, key)
		}
		ref := entryRef{top: name, action: segs[0], index: i}
		if entries[ref] == nil {
			entries[ref] = map[string]string{}
		}
		entries[ref][segs[2]] = vals[0]
	}
	if !recognised {
		return nil, Account{}, fmt.Errorf("%w: no account, leads or contacts keys in the form", ErrWebhook)
	}
	refs := make([]entryRef, 0, len(entries))
	for r := range entries {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, func(a, b entryRef) int {
		return cmp.Or(cmp.Compare(webhookEntities[a.top], webhookEntities[b.top]),
			cmp.Compare(webhookActions[a.action], webhookActions[b.action]), cmp.Compare(a.index, b.index))
	})
	var out []crm.ResponsibleChange
	seen := map[crm.ResponsibleChange]bool{}
	for _, r := range refs {
		ch, ok, err := change(r, entries[r])
		if err != nil {
			return nil, Account{}, err
		}
		// amoCRM sends the same change under "responsible" and "update" when both are subscribed.
		if k := (crm.ResponsibleChange{Entity: ch.Entity, ID: ch.ID, Responsible: ch.Responsible}); ok && !seen[k] {
			seen[k] = true
			out = append(out, ch)
		}
	}
	return out, acc, nil
}

// change reads one entry; ok is false when the entry says nothing about the responsible.
func change(r entryRef, f map[string]string) (crm.ResponsibleChange, bool, error) {
	where := fmt.Sprintf("%s[%s][%d]", r.top, r.action, r.index)
	num := func(field string) (int64, bool, error) {
		s, ok := f[field]
		if !ok || s == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, false, fmt.Errorf("%w: %s[%s] = %q is not a valid number", ErrWebhook, where, field, s)
		}
		return n, true, nil
	}
	var ch crm.ResponsibleChange
	entity, err := entryEntity(r.top, f["type"])
	if err != nil {
		return ch, false, fmt.Errorf("%w: %s: %w", ErrWebhook, where, err)
	}
	id, hasID, err := num("id")
	if err != nil {
		return ch, false, err
	}
	resp, hasResp, err := num("responsible_user_id")
	if err != nil {
		return ch, false, err
	}
	old, hasOld, err := num("old_responsible_user_id")
	if err != nil {
		return ch, false, err
	}
	by, _, err := num("modified_user_id")
	if err != nil {
		return ch, false, err
	}
	at, hasAt, err := num("last_modified")
	if err != nil {
		return ch, false, err
	}
	if !hasAt {
		if at, _, err = num("updated_at"); err != nil {
			return ch, false, err
		}
	}
	if !hasResp || (hasOld && old == resp) {
		return ch, false, nil
	}
	if !hasID || id == 0 {
		return ch, false, fmt.Errorf("%w: %s has a responsible user but no entity id", ErrWebhook, where)
	}
	ch = crm.ResponsibleChange{Entity: entity, ID: id, Responsible: crm.UserID(resp), OldResponsible: crm.UserID(old), ModifiedBy: crm.UserID(by)}
	if at > 0 {
		ch.At = time.Unix(at, 0).UTC()
	}
	return ch, true, nil
}

func entryEntity(top, typ string) (crm.EntityType, error) {
	switch top {
	case "leads":
		return crm.EntityLead, nil
	case "companies":
		return crm.EntityCompany, nil
	}
	switch typ {
	case "", "contact":
		return crm.EntityContact, nil
	case "company":
		return crm.EntityCompany, nil
	}
	return "", fmt.Errorf("unknown type %q (want contact or company)", typ)
}

func (a *Account) set(segs []string, v string) error {
	if len(segs) != 1 {
		return nil
	}
	switch segs[0] {
	case "subdomain":
		a.Subdomain = v
	case "id":
		if v == "" {
			return nil
		}
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id < 0 {
			return fmt.Errorf("%w: account[id] = %q is not a valid number", ErrWebhook, v)
		}
		a.ID = id
	}
	return nil
}

// splitKey splits "leads[update][0][id]" into "leads" and [update 0 id]; ok is false for a
// key that is not name followed by bracketed segments.
func splitKey(key string) (name string, segs []string, ok bool) {
	open := strings.IndexByte(key, '[')
	if open <= 0 {
		return key, nil, open < 0 && key != ""
	}
	name, rest := key[:open], key[open:]
	for rest != "" {
		if rest[0] != '[' {
			return "", nil, false
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", nil, false
		}
		segs = append(segs, rest[1:end])
		rest = rest[end+1:]
	}
	return name, segs, true
}
