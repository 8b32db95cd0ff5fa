package chatapp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/internal/apiclient"
)

// Credentials are what ChatApp's tokens.make takes, from the account's personal cabinet.
type Credentials struct {
	Email    string
	Password string
	AppID    string
}

// account names the ChatApp account the credentials sign in to, without the password:
// a stored pair of another account (the file kept after email or app_id changed) is not used.
func (c Credentials) account() string {
	h := sha256.Sum256([]byte(c.Email + "\x00" + c.AppID))
	return hex.EncodeToString(h[:8])
}

// Tokens is the pair tokens.make and tokens.refresh answer with. The end times are Unix
// seconds; ChatApp writes whole seconds, the chat sandbox fractions (its test lifetimes
// are shorter than a second).
type Tokens struct {
	AccessToken         string  `json:"accessToken"`
	AccessTokenEndTime  float64 `json:"accessTokenEndTime"`
	RefreshToken        string  `json:"refreshToken"`
	RefreshTokenEndTime float64 `json:"refreshTokenEndTime"`
	// ObtainedAt (ours, Unix seconds) dates the pair, so the renewal margin scales with
	// the lifetime ChatApp gave it.
	ObtainedAt float64 `json:"obtainedAt,omitempty"`
	// Account (ours) is Credentials.account of the credentials that made the pair.
	Account string `json:"account,omitempty"`
}

func unixTime(s float64) time.Time {
	sec, frac := math.Modf(s)
	return time.Unix(int64(sec), int64(frac*1e9))
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// renewAt is when the access token is renewed: a fifth of its lifetime (at most ten
// minutes) before it ends, so a request in flight never carries an expiring token.
func (t Tokens) renewAt() time.Time {
	end := unixTime(t.AccessTokenEndTime)
	margin := 10 * time.Minute
	if t.ObtainedAt > 0 {
		margin = min(margin, end.Sub(unixTime(t.ObtainedAt))/5)
	}
	return end.Add(-margin)
}

// TokenStore keeps the pair across restarts (ChatApp asks integrations to store it, and
// to call tokens.make only when there is none). The pair is a secret: stores never log it.
type TokenStore interface {
	// LoadTokens returns the stored pair; a zero Tokens when there is none.
	LoadTokens(ctx context.Context) (Tokens, error)
	SaveTokens(ctx context.Context, t Tokens) error
}

// MemoryTokens keeps the pair in the process only.
type MemoryTokens struct {
	mu sync.Mutex
	t  Tokens
}

// LoadTokens implements TokenStore.
func (m *MemoryTokens) LoadTokens(context.Context) (Tokens, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t, nil
}

// SaveTokens implements TokenStore.
func (m *MemoryTokens) SaveTokens(_ context.Context, t Tokens) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t = t
	return nil
}

// FileTokens keeps the pair in a file readable by its owner only (in data_dir).
type FileTokens struct{ Path string }

// LoadTokens implements TokenStore.
func (f FileTokens) LoadTokens(context.Context) (Tokens, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return Tokens{}, nil
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("chatapp tokens: %w", err)
	}
	return decodeTokens(b, f.Path)
}

// decodeTokens reads a stored pair; where names the file or key for the message.
func decodeTokens(b []byte, where string) (Tokens, error) {
	var t Tokens
	if err := json.Unmarshal(b, &t); err != nil {
		return Tokens{}, fmt.Errorf("chatapp tokens: %s does not hold a token pair: %w", where, err)
	}
	return t, nil
}

// SaveTokens implements TokenStore: written aside and renamed, so a crash leaves the old
// pair or the new one.
func (f FileTokens) SaveTokens(_ context.Context, t Tokens) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), ".chatapp-tokens-*")
	if err != nil {
		return fmt.Errorf("chatapp tokens: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("chatapp tokens: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("chatapp tokens: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("chatapp tokens: %w", err)
	}
	return nil
}

// RedisTokens keeps the pair under a Redis key, shared by every crmlink instance.
type RedisTokens struct {
	RDB redis.UniversalClient
	Key string
}

// LoadTokens implements TokenStore.
func (r RedisTokens) LoadTokens(ctx context.Context) (Tokens, error) {
	b, err := r.RDB.Get(ctx, r.Key).Bytes()
	if errors.Is(err, redis.Nil) {
		return Tokens{}, nil
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("chatapp tokens: redis: %w", err)
	}
	return decodeTokens(b, "redis key "+r.Key)
}

// SaveTokens implements TokenStore; the key lives as long as the refresh token.
func (r RedisTokens) SaveTokens(ctx context.Context, t Tokens) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	ttl := time.Until(unixTime(t.RefreshTokenEndTime))
	if ttl < time.Second {
		ttl = time.Second
	}
	if err := r.RDB.Set(ctx, r.Key, b, ttl).Err(); err != nil {
		return fmt.Errorf("chatapp tokens: redis: %w", err)
	}
	return nil
}

// ErrCredentials: tokens.make refused the email, password or app id.
var ErrCredentials = errors.New("ChatApp refused the email, password or app_id")

// invalidToken is ChatApp's error code for an access (or refresh) token it no longer takes.
const invalidToken = "ApiInvalidTokenError"

// isInvalidToken reports whether err is ChatApp's ApiInvalidTokenError (or a bare 401).
func isInvalidToken(err error) bool {
	var se *apiclient.StatusError
	if !errors.As(err, &se) {
		return false
	}
	return bytes.Contains(se.Body, []byte(invalidToken)) || se.Status == http.StatusUnauthorized
}

// tokenSource hands out a valid access token: the stored pair while it is fresh, then
// tokens.refresh, then (refresh token expired or refused) tokens.make.
type tokenSource struct {
	api   *apiclient.Client
	creds Credentials
	store TokenStore
	key   string // the config key the credentials come from, for messages
	now   func() time.Time

	mu      sync.Mutex
	cur     Tokens
	loaded  bool
	lastErr error
}

// access returns an access token that is not about to expire.
func (s *tokenSource) access(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(ctx); err != nil {
		return "", err
	}
	if s.cur.AccessToken != "" && s.now().Before(s.cur.renewAt()) {
		return s.cur.AccessToken, nil
	}
	return s.renewLocked(ctx)
}

// rejected is called when ChatApp answered ApiInvalidTokenError to a request made with
// token: the pair is renewed once (unless another request already did) and the new access
// token returned for the retry.
func (s *tokenSource) rejected(ctx context.Context, token string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.AccessToken != "" && s.cur.AccessToken != token {
		return s.cur.AccessToken, nil
	}
	s.cur.AccessToken = ""
	return s.renewLocked(ctx)
}

func (s *tokenSource) load(ctx context.Context) error {
	if s.loaded {
		return nil
	}
	t, err := s.store.LoadTokens(ctx)
	if err != nil {
		return err
	}
	if t.Account == s.creds.account() {
		s.cur = t
	}
	s.loaded = true
	return nil
}

func (s *tokenSource) renewLocked(ctx context.Context) (string, error) {
	var t Tokens
	var err error
	if s.cur.RefreshToken != "" && s.now().Before(unixTime(s.cur.RefreshTokenEndTime)) {
		t, err = s.call(ctx, "/v1/tokens/refresh", http.Header{"Refresh": {s.cur.RefreshToken}}, nil)
		if err != nil && !isInvalidToken(err) && !errors.Is(err, chatbridge.ErrRejected) {
			s.lastErr = err
			return "", err
		}
	}
	if t.AccessToken == "" {
		body := map[string]string{"email": s.creds.Email, "password": s.creds.Password, "appId": s.creds.AppID}
		t, err = s.call(ctx, "/v1/tokens", nil, body)
		var se *apiclient.StatusError
		if errors.As(err, &se) && se.Status >= 400 && se.Status < 500 && se.Status != http.StatusTooManyRequests {
			err = fmt.Errorf("%s.password: %w (tokens.make answered %w); check %s.email, %s.app_id and CRMLINK_CHAT_CHATAPP_PASSWORD",
				s.key, ErrCredentials, err, s.key, s.key)
		}
		if err != nil {
			s.lastErr = err
			return "", err
		}
	}
	t.ObtainedAt, t.Account = unixSeconds(s.now()), s.creds.account()
	s.cur, s.lastErr = t, nil
	if err := s.store.SaveTokens(ctx, t); err != nil {
		// The pair works for this process; the next start makes a new one.
		s.lastErr = fmt.Errorf("%s: the new token pair could not be stored: %w", s.key, err)
	}
	return t.AccessToken, nil
}

// call is tokens.make or tokens.refresh.
func (s *tokenSource) call(ctx context.Context, path string, header http.Header, body any) (Tokens, error) {
	var env envelope[Tokens]
	if err := s.api.DoAs(ctx, "", header, http.MethodPost, path, nil, body, &env); err != nil {
		return Tokens{}, err
	}
	if env.Data.AccessToken == "" || env.Data.RefreshToken == "" {
		return Tokens{}, fmt.Errorf("chatapp POST %s: the answer has no accessToken and refreshToken: %w", path, chatbridge.ErrUnavailable)
	}
	return env.Data, nil
}

// health reports the last sign-in outcome without asking ChatApp.
func (s *tokenSource) health() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.lastErr != nil:
		return false, s.lastErr.Error()
	case s.cur.AccessToken == "":
		return true, "not signed in yet (tokens.make on the first API call)"
	}
	return true, "signed in; access token renewed before " + unixTime(s.cur.AccessTokenEndTime).UTC().Format(time.RFC3339)
}
