package chatbridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmlink/crmlink/crm"
)

// VerifyUsers checks chat.users against the live systems, for check-config: every mapped
// CRM user must exist (and be active) in the CRM, every mapped chat user on the platform;
// the vendors' first reason for a sync that does nothing is an employee missing on one
// side. It returns one message per problem, naming the key; the error is for a system
// that could not be asked.
func VerifyUsers(ctx context.Context, cfg Config, dir crm.Directory, platforms ...Platform) ([]string, error) {
	crmUsers, err := dir.Users(ctx)
	if err != nil {
		return nil, fmt.Errorf("chatbridge: CRM users: %w", err)
	}
	known := map[crm.UserID]crm.User{}
	for _, u := range crmUsers {
		known[u.ID] = u
	}
	chatUsers := map[PlatformName]map[string]bool{}
	for _, p := range platforms {
		us, err := p.Users(ctx)
		if err != nil {
			return nil, fmt.Errorf("chatbridge: %s users: %w", p.Name(), err)
		}
		ids := map[string]bool{}
		for _, u := range us {
			ids[u.ID] = true
		}
		chatUsers[p.Name()] = ids
	}
	var v problems
	for i, u := range cfg.Users {
		k := fmt.Sprintf("chat.users[%d]", i)
		if cu, ok := known[u.CRMUserID]; !ok {
			v.add(k+".crm_user_id", "is %d, not a user of the CRM account; add the employee to the CRM or fix the id", u.CRMUserID)
		} else if !cu.Active {
			v.add(k+".crm_user_id", "is %d (%s), a deactivated CRM user; the CRM will not take them as responsible", u.CRMUserID, cu.Name)
		}
		for _, p := range Platforms {
			id := u.ChatID(p)
			ids, checked := chatUsers[p]
			if id == "" || !checked || ids[id] {
				continue
			}
			v.add(k+"."+string(p), "is %q, not a user of the %s account; add the employee to %s or fix the id", id, p, p)
		}
	}
	return v, nil
}

// SignerIn is a platform that signs in before its API answers (ChatApp's tokens.make).
type SignerIn interface {
	SignIn(ctx context.Context) error
	// Health is the last sign-in outcome, for /healthz; a refused password names its key.
	Health() (ok bool, detail string)
}

// SignIn signs in to the platforms that need it, for check-config --online: it returns
// the platforms whose API can be asked, and one message per platform that refused the
// credentials (the message names the key). Other failures leave the platform in, so
// that asking it reports them.
func SignIn(ctx context.Context, platforms []Platform) (usable []Platform, refused []string) {
	for _, p := range platforms {
		s, ok := p.(SignerIn)
		if !ok {
			usable = append(usable, p)
			continue
		}
		if err := s.SignIn(ctx); errors.Is(err, ErrUnauthorized) {
			refused = append(refused, err.Error())
			continue
		}
		usable = append(usable, p)
	}
	return usable, refused
}
