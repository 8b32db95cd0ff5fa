package intake

import (
	"context"
	"fmt"
	"strings"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
)

// findClient looks for a returning client on each configured field the visitor gave: with
// match any the first field (in the configured order) that finds a contact decides, with
// match all a contact must be found on every one of them. Which of several contacts is the
// client, its open deal and its owner are routing's answer (routing.ClientChooser, the
// precedence a call from the client follows).
func (e *Engine) findClient(ctx context.Context, ev chatbridge.Event) (routing.Client, Field, bool, error) {
	cs, by, found, err := e.candidates(ctx, ev)
	if err != nil || !found {
		return routing.Client{}, by, found, err
	}
	c, err := e.opts.clients.ChooseClient(ctx, cs)
	if err != nil {
		return routing.Client{}, "", false, fmt.Errorf("find returning client by %s: %w", by, err)
	}
	return c, by, true, nil
}

// candidates are the contacts the configured fields find for the visitor.
func (e *Engine) candidates(ctx context.Context, ev chatbridge.Event) ([]crm.Contact, Field, bool, error) {
	var (
		fields []Field
		found  [][]crm.Contact
	)
	for _, f := range e.cfg.Duplicates.By {
		cs, asked, err := e.search(ctx, f, ev)
		if err != nil {
			return nil, "", false, fmt.Errorf("find returning client by %s: %w", f, err)
		}
		if !asked {
			continue
		}
		if e.cfg.Duplicates.Match == MatchAny && len(cs) > 0 {
			return cs, f, true, nil
		}
		fields, found = append(fields, f), append(found, cs)
	}
	if e.cfg.Duplicates.Match == MatchAny || len(found) == 0 {
		return nil, "", false, nil
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
		return nil, "", false, nil
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = string(f)
	}
	return both, Field(strings.Join(names, "+")), true, nil
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

func containsContact(cs []crm.Contact, id int64) bool {
	for _, c := range cs {
		if c.ID == id {
			return true
		}
	}
	return false
}
