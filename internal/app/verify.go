package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/adapters"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/config"
)

// VerifyOnline asks the live systems of a valid configuration whether the people it names
// exist there (`crmlink check-config --online`): every managers[].crm_user and
// chat.users[].crm_user_id in the amoCRM account (and active), every chat user on their
// synced chat platform. It returns one message per problem, naming the key, and a line
// saying what was asked; the error is for a system that could not be asked (an amoCRM
// token it refuses included).
func VerifyOnline(ctx context.Context, cfg *config.Config) (problems []string, checked string, err error) {
	if !cfg.AmoCRM.Configured() {
		return nil, "nothing to ask: amocrm.base_url is empty", nil
	}
	c, err := newAmoCRM(cfg, nil, nil, zerolog.Nop())
	if err != nil {
		return nil, "", err
	}
	users, err := c.Users(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("amoCRM users (is amocrm.token valid?): %w", err)
	}
	known := map[crm.UserID]crm.User{}
	for _, u := range users {
		known[u.ID] = u
	}
	for i, m := range cfg.Managers {
		k := fmt.Sprintf("managers[%d].crm_user", i)
		switch u, ok := known[crm.UserID(m.CRMUser)]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: is %d, not a user of the amoCRM account; calls of their clients would fall back with no_owner", k, m.CRMUser))
		case !u.Active:
			problems = append(problems, fmt.Sprintf("%s: is %d (%s), a deactivated amoCRM user", k, m.CRMUser, u.Name))
		}
	}
	asked := []string{fmt.Sprintf("amoCRM: %d users", len(users))}
	if cfg.Chat.Enabled() {
		set, err := adapters.Build(cfg.Chat.Config, adapters.Options{Region: cfg.Routing.DefaultRegion, Timeout: cfg.AmoCRM.RequestTimeout})
		if err != nil {
			return nil, "", err
		}
		signedIn, refused := chatbridge.SignIn(ctx, set.Synced)
		problems = append(problems, refused...)
		chat, err := chatbridge.VerifyUsers(ctx, cfg.Chat.Config, c, signedIn...)
		if err != nil {
			return nil, "", err
		}
		problems = append(problems, chat...)
		for _, p := range signedIn {
			asked = append(asked, string(p.Name())+" users")
		}
	}
	return problems, "asked " + strings.Join(asked, ", "), nil
}
