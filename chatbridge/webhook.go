package chatbridge

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxWebhookBody bounds a webhook body an adapter reads; chat webhooks are a few kilobytes.
const MaxWebhookBody = 1 << 20

// CheckBearer authenticates a request by "Authorization: Bearer <secret>" in constant time.
// An empty secret refuses every request.
func CheckBearer(r *http.Request, secret string) error {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !sameSecret(strings.TrimSpace(got), secret) {
		return fmt.Errorf("%w: no valid Bearer token", ErrUnauthorized)
	}
	return nil
}

// CheckPathSecret authenticates a request by a secret in its URL: the {secret} path
// value when the route has one, otherwise the last path segment. An empty secret refuses
// every request.
func CheckPathSecret(r *http.Request, secret string) error {
	got := r.PathValue("secret")
	if got == "" && r.URL != nil {
		p := strings.TrimSuffix(r.URL.Path, "/")
		got = p[strings.LastIndexByte(p, '/')+1:]
	}
	if !sameSecret(got, secret) {
		return fmt.Errorf("%w: the URL does not end with the webhook secret", ErrUnauthorized)
	}
	return nil
}

func sameSecret(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// ReadWebhook is the prologue of every adapter's ParseWebhook: it authenticates the
// request with auth (CheckBearer, CheckPathSecret), requires a POST and reads the body.
// Errors name the platform and wrap ErrUnauthorized or ErrBadWebhook.
func ReadWebhook(r *http.Request, p PlatformName, auth func(*http.Request) error) ([]byte, error) {
	if err := auth(r); err != nil {
		return nil, fmt.Errorf("%s webhook: %w", p, err)
	}
	if r.Method != http.MethodPost {
		return nil, fmt.Errorf("%s webhook: %w: method %s, want POST", p, ErrBadWebhook, r.Method)
	}
	body, err := ReadBody(r)
	if err != nil {
		return nil, fmt.Errorf("%s webhook: %w", p, err)
	}
	return body, nil
}

// DecodeOne decodes a body that must be exactly one JSON value into v; anything else is
// an ErrBadWebhook naming the platform.
func DecodeOne(body []byte, p PlatformName, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s webhook: %w: %w", p, ErrBadWebhook, err)
	}
	if dec.More() {
		return fmt.Errorf("%s webhook: %w: more than one JSON value", p, ErrBadWebhook)
	}
	return nil
}

// ReadBody reads a webhook body up to MaxWebhookBody; a longer or unreadable body is an
// ErrBadWebhook.
func ReadBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, fmt.Errorf("%w: empty body", ErrBadWebhook)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxWebhookBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %w", ErrBadWebhook, err)
	}
	if len(b) > MaxWebhookBody {
		return nil, fmt.Errorf("%w: body is larger than %d bytes", ErrBadWebhook, MaxWebhookBody)
	}
	return b, nil
}
