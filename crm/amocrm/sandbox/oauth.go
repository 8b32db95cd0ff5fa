package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const defaultExpiresIn = 86400

// oauthState holds the tokens POST /oauth2/access_token has issued.
type oauthState struct {
	cfg      *OAuth
	access   map[string]time.Time // access token → expiry
	refresh  map[string]bool      // refresh tokens not yet used
	codeUsed bool
}

func newOAuthState(cfg *OAuth) oauthState {
	st := oauthState{access: map[string]time.Time{}, refresh: map[string]bool{}}
	if cfg != nil {
		c := *cfg
		if c.ExpiresIn <= 0 {
			c.ExpiresIn = defaultExpiresIn
		}
		st.cfg = &c
		if c.RefreshToken != "" {
			st.refresh[c.RefreshToken] = true
		}
	}
	return st
}

// authorised accepts the long-lived token and unexpired OAuth access tokens.
func (s *Server) authorised(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok == s.settings.Token {
		return true
	}
	exp, ok := s.oauth.access[tok]
	return ok && s.now().Before(exp)
}

// ExpireTokens invalidates every OAuth access token issued so far (not the refresh tokens),
// as if their day had passed: the next request with one gets 401.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	clear(s.oauth.access)
	s.mu.Unlock()
}

// tokenRequest is the body of POST /oauth2/access_token, JSON or form-encoded.
type tokenRequest struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	GrantType    string `json:"grant_type"`
	RefreshToken string `json:"refresh_token"`
	Code         string `json:"code"`
	RedirectURI  string `json:"redirect_uri"`
}

// serveToken issues a new access and refresh token for a refresh_token or
// authorization_code grant; a used refresh token is retired, as in amoCRM.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeProblem(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	req, ok := readTokenRequest(r)
	if !ok {
		writeProblem(w, http.StatusBadRequest, "the body must be JSON or form-encoded")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.oauth
	if st.cfg == nil {
		writeProblem(w, http.StatusBadRequest, "OAuth is not configured in the seed")
		return
	}
	if req.ClientID != st.cfg.ClientID || req.ClientSecret != st.cfg.ClientSecret {
		writeProblem(w, http.StatusUnauthorized, "Client authentication failed")
		return
	}
	if st.cfg.RedirectURI != "" && req.RedirectURI != st.cfg.RedirectURI {
		writeProblem(w, http.StatusBadRequest, "redirect_uri does not match the integration")
		return
	}
	switch req.GrantType {
	case "refresh_token":
		if !st.refresh[req.RefreshToken] {
			writeProblem(w, http.StatusBadRequest, "The refresh token is invalid")
			return
		}
		delete(st.refresh, req.RefreshToken)
	case "authorization_code":
		if st.cfg.AuthCode == "" || req.Code != st.cfg.AuthCode || st.codeUsed {
			writeProblem(w, http.StatusBadRequest, "The authorization code is invalid")
			return
		}
		st.codeUsed = true
	default:
		writeProblem(w, http.StatusBadRequest, "grant_type must be refresh_token or authorization_code")
		return
	}
	access, refresh := newToken(), newToken()
	st.access[access] = s.now().Add(time.Duration(st.cfg.ExpiresIn) * time.Second)
	st.refresh[refresh] = true
	writeJSON(w, "application/json", http.StatusOK, map[string]any{
		"token_type":    "Bearer",
		"expires_in":    st.cfg.ExpiresIn,
		"server_time":   s.now().Unix(),
		"access_token":  access,
		"refresh_token": refresh,
	})
}

func readTokenRequest(r *http.Request) (tokenRequest, bool) {
	var req tokenRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return req, false
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		f, err := url.ParseQuery(string(body))
		if err != nil {
			return req, false
		}
		return tokenRequest{
			ClientID: f.Get("client_id"), ClientSecret: f.Get("client_secret"), GrantType: f.Get("grant_type"),
			RefreshToken: f.Get("refresh_token"), Code: f.Get("code"), RedirectURI: f.Get("redirect_uri"),
		}, true
	}
	return req, json.Unmarshal(body, &req) == nil
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
