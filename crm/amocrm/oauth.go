package amocrm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// refreshMargin is how long before expiry the access token is renewed, so that no request
// of the call path has to wait for a refresh after a 401.
const refreshMargin = 5 * time.Minute

const tokenPath = "/oauth2/access_token"

// oauthSource holds the current tokens and serialises their renewal.
type oauthSource struct {
	cfg OAuth
	// renewing is a one-slot semaphore: one refresh at a time, and waiting for it honours ctx.
	renewing chan struct{}

	mu  sync.Mutex
	tok tokens
	has bool
}

func loadOAuth(cfg OAuth) (*oauthSource, error) {
	t, ok, err := readTokens(cfg.TokenFile)
	if err != nil {
		return nil, err
	}
	return &oauthSource{cfg: cfg, renewing: make(chan struct{}, 1), tok: t, has: ok}, nil
}

func (s *oauthSource) current() (tokens, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok, s.has
}

func (s *oauthSource) set(t tokens) {
	s.mu.Lock()
	s.tok, s.has = t, true
	s.mu.Unlock()
}

// oauthAuthorizer renews tokens through the Client, so refreshes spend the same budget.
type oauthAuthorizer struct {
	c   *Client
	src *oauthSource
}

func (a *oauthAuthorizer) token(ctx context.Context) (string, error) {
	t, ok := a.src.current()
	if !ok {
		return "", errNoOAuthToken
	}
	if t.ExpiresAt.IsZero() || time.Until(t.ExpiresAt) > refreshMargin {
		return t.AccessToken, nil
	}
	if err := a.renew(ctx, t.AccessToken); err != nil {
		if time.Now().Before(t.ExpiresAt) {
			a.c.log.Warn().Err(err).Msg("amocrm token refresh failed; using the current token until it expires")
			return t.AccessToken, nil
		}
		return "", err
	}
	t, _ = a.src.current()
	return t.AccessToken, nil
}

func (a *oauthAuthorizer) refresh(ctx context.Context, failed string) (bool, error) {
	if _, ok := a.src.current(); !ok {
		return false, nil
	}
	if err := a.renew(ctx, failed); err != nil {
		return false, err
	}
	return true, nil
}

// renew replaces the access token that failed (or is expiring). When another request already
// renewed it while this one waited, the new token is used as is.
func (a *oauthAuthorizer) renew(ctx context.Context, failed string) error {
	select {
	case a.src.renewing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.src.renewing }()
	cur, ok := a.src.current()
	if !ok {
		return errNoOAuthToken
	}
	if cur.AccessToken != failed {
		return nil
	}
	cfg := a.src.cfg
	t, err := a.c.grant(ctx, map[string]string{
		"client_id":     cfg.ClientID,
		"client_secret": cfg.ClientSecret,
		"grant_type":    "refresh_token",
		"refresh_token": cur.RefreshToken,
		"redirect_uri":  cfg.RedirectURI,
	})
	if err != nil {
		return err
	}
	a.store(t)
	a.c.log.Info().Time("expires_at", t.ExpiresAt).Msg("amocrm access token refreshed")
	return nil
}

// store keeps new tokens in memory first: the old refresh token is already dead, so even
// when the file cannot be written this process goes on working.
func (a *oauthAuthorizer) store(t tokens) {
	a.src.set(t)
	if err := writeTokens(a.src.cfg.TokenFile, t); err != nil {
		a.c.log.Error().Err(err).Str("file", a.src.cfg.TokenFile).Msg("amocrm tokens refreshed but not saved; a restart will need a new authorization code")
	}
}

// ExchangeCode trades an authorization code (valid about 20 minutes after the admin
// installs the integration) for the first tokens and saves them to the token file.
func (c *Client) ExchangeCode(ctx context.Context, code string) error {
	a, ok := c.auth.(*oauthAuthorizer)
	if !ok {
		return errors.New("amocrm: exchange code: the client uses a long-lived token, not OAuth")
	}
	cfg := a.src.cfg
	t, err := c.grant(ctx, map[string]string{
		"client_id":     cfg.ClientID,
		"client_secret": cfg.ClientSecret,
		"grant_type":    "authorization_code",
		"code":          code,
		"redirect_uri":  cfg.RedirectURI,
	})
	if err != nil {
		return err
	}
	a.src.set(t)
	return writeTokens(cfg.TokenFile, t)
}

// grant calls the token endpoint; its errors never carry the posted secrets.
func (c *Client) grant(ctx context.Context, form map[string]string) (tokens, error) {
	body, err := json.Marshal(form)
	if err != nil {
		return tokens{}, apiError(http.MethodPost, tokenPath, err)
	}
	if err := c.waitBudget(ctx, PriorityOf(ctx)); err != nil {
		return tokens{}, apiError(http.MethodPost, tokenPath, err)
	}
	status, data, _, err := c.send(ctx, http.MethodPost, tokenPath, nil, body, "")
	if err != nil {
		return tokens{}, apiError(http.MethodPost, tokenPath, err)
	}
	switch {
	case status == http.StatusOK:
	case status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden:
		return tokens{}, apiError(http.MethodPost, tokenPath, fmt.Errorf("%w: token grant refused (status %d)%s", crm.ErrUnauthorized, status, problemDetail(data)))
	case status == http.StatusTooManyRequests:
		return tokens{}, apiError(http.MethodPost, tokenPath, crm.ErrRateLimited)
	default:
		return tokens{}, apiError(http.MethodPost, tokenPath, fmt.Errorf("%w: status %d", crm.ErrUnavailable, status))
	}
	var r struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(data, &r); err != nil || r.AccessToken == "" || r.RefreshToken == "" {
		return tokens{}, apiError(http.MethodPost, tokenPath, errors.New("token response lacks access_token or refresh_token"))
	}
	t := tokens{AccessToken: r.AccessToken, RefreshToken: r.RefreshToken}
	if r.ExpiresIn > 0 {
		t.ExpiresAt = time.Now().Add(time.Duration(r.ExpiresIn) * time.Second).UTC().Truncate(time.Second)
	}
	return t, nil
}
