package intake

import (
	"context"
	"fmt"
	"strings"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
)

// findClient looks for a returning client on each configured field the visitor gave: with
// match any the first field (in the configured order) that finds a contact decides, with
// match all a contact must be found on every one of them. Among several contacts the most
// recently updated is the client.
func (e *Engine) findClient(ctx context.Context, ev chatbridge.Event) (crm.Contact, Field, bool, error) {
	var (
		fields []Field
		found  [][]crm.Contact
	)
	for _, f := range e.cfg.Duplicates.By {
		cs, asked, err := e.search(ctx, f, ev)
		if err != nil {
			return crm.Contact{}, "", false, fmt.Errorf("find returning client by %s: %w", f, err)
		}
		if !asked {
			continue
		}
		if e.cfg.Duplicates.Match == MatchAny && len(cs) > 0 {
			return latest(cs), f, true, nil
		}
		fields, found = append(fields, f), append(found, cs)
	}
	if e.cfg.Duplicates.Match == MatchAny || len(found) == 0 {
		return crm.Contact{}, "", false, nil
	}
	var both []crm.Contact
	for _, c := range found[0] {
		inAll := true
		for _, cs := range found[1:] {
			inAll = inAll && containsContact(cs, c.ID)
		}
		if inAll {
			both = append(both, c)
		}
	}
	if len(both) == 0 {
		return crm.Contact{}, "", false, nil
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = string(f)
	}
	return latest(both), Field(strings.Join(names, "+")), true, nil
}

// search runs one field's search; asked is false when the visitor gave no such value.
func (e *Engine) search(ctx context.Context, f Field, ev chatbridge.Event) ([]crm.Contact, bool, error) {
	switch f {
	case FieldPhone:
		if ev.Phone == "" {
			return nil, false, nil
		}
		cs, err := e.crm.FindContactsByPhone(ctx, ev.Phone)
		return cs, true, err
	case FieldEmail:
		email := visitorEmail(ev)
		if email == "" {
			return nil, false, nil
		}
		cs, err := e.crm.FindContactsByEmail(ctx, email)
		return cs, true, err
	case FieldCustomField:
		v := e.customValue(ev)
		if v == "" {
			return nil, false, nil
		}
		cs, err := e.crm.FindContactsByField(ctx, e.cfg.Duplicates.CustomFieldID, v)
		return cs, true, err
	}
	return nil, false, nil
}

// customValue finds the custom field's value in what the visitor wrote; "" when the field
// is not configured or nothing matches.
func (e *Engine) customValue(ev chatbridge.Event) string {
	if e.pattern == nil {
		return ""
	}
	var texts []string
	if ev.Visitor != nil {
		texts = append(texts, ev.Visitor.Description)
	}
	if ev.Message != nil {
		texts = append(texts, ev.Message.Text)
	}
	for _, t := range texts {
		m := e.pattern.FindStringSubmatch(t)
		switch {
		case len(m) > 1 && m[1] != "":
			return strings.TrimSpace(m[1])
		case len(m) > 0 && m[0] != "":
			return strings.TrimSpace(m[0])
		}
	}
	return ""
}

func (e *Engine) customFieldName() string {
	if n := e.cfg.Duplicates.CustomFieldName; n != "" {
		return n
	}
	return "custom field"
}

// openLead returns the client's most recently updated open deal; zero when none is open.
func (e *Engine) openLead(ctx context.Context, c crm.Contact) (crm.Lead, error) {
	if len(c.LeadIDs) == 0 {
		return crm.Lead{}, nil
	}
	ls, err := e.crm.Leads(ctx, c.LeadIDs)
	if err != nil {
		return crm.Lead{}, fmt.Errorf("read deals of contact %d: %w", c.ID, err)
	}
	var open crm.Lead
	for _, l := range ls {
		if l.Open() && (open.ID == 0 || l.UpdatedAt.After(open.UpdatedAt)) {
			open = l
		}
	}
	return open, nil
}

func latest(cs []crm.Contact) crm.Contact {
	best := cs[0]
	for _, c := range cs[1:] {
		if c.UpdatedAt.After(best.UpdatedAt) {
			best = c
		}
	}
	return best
}

func containsContact(cs []crm.Contact, id int64) bool {
	for _, c := range cs {
		if c.ID == id {
			return true
		}
	}
	return false
}
