package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/crmlink/crmlink/clicktocall"
	"github.com/crmlink/crmlink/internal/ratelog"
)

// Access says who may call an endpoint; every route is registered with one.
type Access int

const (
	// Open endpoints reveal nothing about clients: /healthz and /metrics, which load
	// balancers and Prometheus poll without credentials.
	Open Access = iota
	// Webhook endpoints are called by amoCRM and the chat platforms, which authenticate
	// themselves their own way (a secret ending the URL, the platform's header); our
	// bearer tokens are not theirs.
	Webhook
	// Read endpoints reveal client data (whose client a number is, dead events with
	// names and phones): http.read_token or http.token.
	Read
	// Admin endpoints change state: http.token only.
	Admin
	// Signed endpoints serve links crmlink signed itself (the call recordings on amoCRM's
	// notes, played by the manager's browser, which has no token of ours): the HMAC and
	// the expiry in the URL authenticate; a wrong or expired link answers 403.
	Signed
	// CallKey endpoints place and follow click-to-call calls: http.token, or the
	// click-to-call key of one manager (the amoCRM widget, in a browser), which the
	// handler holds to that manager's calls (KeyManager).
	CallKey
)

func (a Access) String() string {
	switch a {
	case Open:
		return "open"
	case Webhook:
		return "webhook"
	case Read:
		return "read"
	case Admin:
		return "admin"
	case Signed:
		return "signed"
	case CallKey:
		return "call_key"
	}
	return "unknown"
}

// Tokens are the bearer tokens of the API. An empty token is never accepted: with
// neither set, Read and Admin endpoints refuse every request.
type Tokens struct {
	Admin string // http.token: every endpoint
	Read  string // http.read_token: Read endpoints only (the viewer, a dashboard)
	// CallKeySecret (click_to_call.key_secret) derives the managers' click-to-call keys;
	// empty: CallKey endpoints take http.token only.
	CallKeySecret string
}

// tokenDigest is what a token is compared as: hashing first makes the comparison take
// the same time whatever the lengths, so a guess learns nothing about the token.
type tokenDigest struct {
	set bool
	sum [sha256.Size]byte
}

func digest(token string) tokenDigest {
	return tokenDigest{set: token != "", sum: sha256.Sum256([]byte(token))}
}

func (d tokenDigest) matches(got [sha256.Size]byte) bool {
	return d.set && subtle.ConstantTimeCompare(d.sum[:], got[:]) == 1
}

// authorizer checks a request's bearer token against an endpoint's access.
type authorizer struct {
	admin, read tokenDigest
	keySecret   string
	// refused bounds the warnings about refused requests: a client retrying a wrong token
	// in a loop must not fill the disk.
	refused *ratelog.Limiter
}

func newAuthorizer(t Tokens) *authorizer {
	return &authorizer{admin: digest(t.Admin), read: digest(t.Read), keySecret: t.CallKeySecret, refused: ratelog.New(ratelog.DefaultInterval)}
}

// guard wraps h so that it runs only for a request with a token good for access.
func (s *Server) guard(access Access, h http.Handler) http.Handler {
	if access == Open || access == Webhook || access == Signed {
		return h
	}
	a := s.auth
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, msg := 0, ""
		if access == CallKey {
			var manager int64
			code, msg, manager = a.checkCallKey(r)
			if code == 0 && manager != 0 {
				r = r.WithContext(context.WithValue(r.Context(), keyManagerCtx{}, manager))
			}
		} else {
			code, msg = a.check(access, r)
		}
		if code == 0 {
			h.ServeHTTP(w, r)
			return
		}
		if ok, suppressed := a.refused.Allow(); ok {
			// Never the token itself: only that one was sent.
			s.log.Warn().Str("method", r.Method).Str("path", r.URL.Path).Str("remote", r.RemoteAddr).
				Bool("token_sent", r.Header.Get("Authorization") != "").Int("status", code).
				Int("suppressed", suppressed).Msg("rejected API request: " + msg)
		}
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="crmlink"`)
		}
		WriteError(w, code, msg)
	})
}

// bearer is the token of an "Authorization: Bearer <token>" header; the scheme name is
// case-insensitive (RFC 6750 after RFC 9110).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// check returns 0 when the request may go on, or the status and the message naming the
// key that would let it.
func (a *authorizer) check(access Access, r *http.Request) (int, string) {
	needs := "http.token (env CRMLINK_HTTP_TOKEN)"
	if access == Read {
		needs = "http.read_token (env CRMLINK_HTTP_READ_TOKEN) or http.token"
	}
	if !a.admin.set && (access == Admin || !a.read.set) {
		return http.StatusForbidden, "this endpoint is off until " + needs + " is set in crmlink's configuration"
	}
	got, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		// The live page's login keeps the token in a cookie (ui.go); a change made with it
		// must come from the page itself, which sends a header no cross-site form can.
		got, ok = uiToken(r)
		if ok && !safeMethod(r.Method) && r.Header.Get(uiHeader) != "1" {
			return http.StatusForbidden, "a change from the live page needs the " + uiHeader + " header"
		}
	}
	if !ok {
		return http.StatusUnauthorized, "this endpoint needs Authorization: Bearer <" + needs + ">"
	}
	sum := sha256.Sum256([]byte(got))
	switch {
	case a.admin.matches(sum):
		return 0, ""
	case a.read.matches(sum) && access == Read:
		return 0, ""
	case a.read.matches(sum):
		return http.StatusForbidden, "the read token does not allow changes; this endpoint needs " + needs
	}
	return http.StatusUnauthorized, "wrong bearer token; this endpoint needs " + needs
}

// keyManagerCtx carries the manager a click-to-call key was made for.
type keyManagerCtx struct{}

// KeyManager is the manager whose click-to-call key authorised the request; false when
// it came with http.token (any manager).
func KeyManager(r *http.Request) (int64, bool) {
	m, ok := r.Context().Value(keyManagerCtx{}).(int64)
	return m, ok
}

// checkCallKey is check for CallKey endpoints: 0 and the key's manager (0 for
// http.token) when the request may go on.
func (a *authorizer) checkCallKey(r *http.Request) (int, string, int64) {
	const needs = "http.token or a manager's click-to-call key (crmlink widget-key)"
	if !a.admin.set && len(a.keySecret) < clicktocall.MinSecretLen {
		return http.StatusForbidden, "this endpoint is off until http.token or click_to_call.key_secret is set in crmlink's configuration", 0
	}
	got, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return http.StatusUnauthorized, "this endpoint needs Authorization: Bearer <" + needs + ">", 0
	}
	sum := sha256.Sum256([]byte(got))
	if a.admin.matches(sum) {
		return 0, "", 0
	}
	if m, ok := clicktocall.VerifyKey(a.keySecret, got); ok {
		return 0, "", m
	}
	if a.read.matches(sum) {
		return http.StatusForbidden, "the read token does not place calls; this endpoint needs " + needs, 0
	}
	return http.StatusUnauthorized, "wrong bearer token; this endpoint needs " + needs, 0
}

// role is what a token may do on the live page: "admin", "viewer", or "" (no valid token).
func (a *authorizer) role(token string) string {
	sum := sha256.Sum256([]byte(token))
	switch {
	case token == "":
		return ""
	case a.admin.matches(sum):
		return roleAdmin
	case a.read.matches(sum):
		return roleViewer
	}
	return ""
}

const (
	roleAdmin  = "admin"
	roleViewer = "viewer"
)

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }
