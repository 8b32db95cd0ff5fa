package amocrm

import (
	"context"

	"github.com/crmlink/crmlink/crm"
)

// CallPath returns the Client as a crm.Directory whose every request has PriorityCall, for
// code (routing) that must not import this package to mark its contexts.
func (c *Client) CallPath() crm.Directory { return callPath{c} }

type callPath struct{ c *Client }

func call(ctx context.Context) context.Context { return WithPriority(ctx, PriorityCall) }

func (p callPath) FindContactsByPhone(ctx context.Context, phone crm.Phone) ([]crm.Contact, error) {
	return p.c.FindContactsByPhone(call(ctx), phone)
}

func (p callPath) Leads(ctx context.Context, ids []int64) ([]crm.Lead, error) {
	return p.c.Leads(call(ctx), ids)
}

func (p callPath) Contact(ctx context.Context, id int64) (crm.Contact, error) {
	return p.c.Contact(call(ctx), id)
}

func (p callPath) Company(ctx context.Context, id int64) (crm.Company, error) {
	return p.c.Company(call(ctx), id)
}

func (p callPath) Users(ctx context.Context) ([]crm.User, error) { return p.c.Users(call(ctx)) }
