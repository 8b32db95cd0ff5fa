package amocrm

import (
	"context"
	"net/url"

	"github.com/crmlink/crmlink/crm"
)

const usersPath = "/api/v4/users"

// Users lists the account users, every page. amoCRM serves this list to admins only, so a
// token of a non-admin integration gets crm.ErrForbidden here.
func (c *Client) Users(ctx context.Context) ([]crm.User, error) {
	found, err := listAll[userDTO](ctx, c, usersPath, url.Values{"limit": {"250"}}, "users")
	if err != nil {
		return nil, err
	}
	out := make([]crm.User, 0, len(found))
	for _, d := range found {
		out = append(out, d.user())
	}
	return out, nil
}
