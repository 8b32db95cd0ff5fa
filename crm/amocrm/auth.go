package amocrm

import (
	"context"
	"fmt"

	"github.com/crmlink/crmlink/crm"
)

// authorizer supplies the bearer token of each request.
type authorizer interface {
	// token returns the token to send now, refreshing it first when it is about to expire.
	token(ctx context.Context) (string, error)
	// refresh is called after a 401 for the token that failed; false means there is nothing
	// to refresh (a long-lived token).
	refresh(ctx context.Context, failed string) (bool, error)
}

// staticToken is a long-lived token: amoCRM answers 401 once it expires or is revoked, and
// only a human can issue a new one.
type staticToken string

func (t staticToken) token(context.Context) (string, error) { return string(t), nil }

func (staticToken) refresh(context.Context, string) (bool, error) { return false, nil }

var errNoOAuthToken = fmt.Errorf("%w: no OAuth token yet: exchange an authorization code first", crm.ErrUnauthorized)
