// Package apiclient is the JSON-over-HTTP plumbing the chat platform adapters share: one
// request with a timeout, the platform's authorization header, and status codes turned
// into chatbridge's error kinds.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crmlink/crmlink/chatbridge"
)

// Client sends JSON requests to one platform's API.
type Client struct {
	Platform chatbridge.PlatformName
	BaseURL  string
	// Authorization is the header value sent with every request ("Bearer <key>"); empty,
	// no request is sent and every call fails with chatbridge.ErrUnauthorized.
	Authorization string
	HTTP          *http.Client
	// Timeout bounds one request on top of the caller's context.
	Timeout time.Duration
}

// DefaultTimeout bounds one request when Client.Timeout is zero.
const DefaultTimeout = 15 * time.Second

// maxResponse bounds a response body read.
const maxResponse = 8 << 20

// New checks the base URL and fills defaults.
func New(p chatbridge.PlatformName, baseURL, authorization string, hc *http.Client, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%s: API URL %q is not an absolute http(s) URL", p, baseURL)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{Platform: p, BaseURL: strings.TrimSuffix(baseURL, "/"), Authorization: authorization, HTTP: hc, Timeout: timeout}, nil
}

// Do sends a request with in (nil: no body) as JSON and decodes a 2xx response into out
// (nil: discarded). Errors wrap chatbridge.ErrUnauthorized (401, 403), ErrNotFound (404),
// ErrRateLimited (429), ErrRejected (other 4xx) or ErrUnavailable (5xx, transport); an
// answer with a status other than 2xx is also a *StatusError.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	if c.Authorization == "" {
		return fmt.Errorf("%s %s %s: no API key configured: %w", c.Platform, method, path, chatbridge.ErrUnauthorized)
	}
	return c.DoAs(ctx, c.Authorization, nil, method, path, query, in, out)
}

// DoAs is Do with the Authorization header given per call (a token that is renewed) and
// extra headers; an empty authorization sends none (a login call).
func (c *Client) DoAs(ctx context.Context, authorization string, header http.Header, method, path string, query url.Values, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s %s: encode: %w", c.Platform, method, path, err)
		}
		body = bytes.NewReader(b)
	}
	target := c.BaseURL + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("%s %s %s: %w", c.Platform, method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for k, vs := range header {
		req.Header[k] = vs
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s %s: %w: %w", c.Platform, method, path, chatbridge.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s %s: read response: %w: %w", c.Platform, method, path, chatbridge.ErrUnavailable, err)
	}
	if kind := kindOf(resp.StatusCode); kind != nil {
		return fmt.Errorf("%s %s %s: %w", c.Platform, method, path, &StatusError{Status: resp.StatusCode, Body: data, Kind: kind})
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s %s: response is not the expected JSON: %w: %w", c.Platform, method, path, chatbridge.ErrUnavailable, err)
	}
	return nil
}

func kindOf(status int) error {
	switch {
	case status >= 200 && status < 300:
		return nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return chatbridge.ErrUnauthorized
	case status == http.StatusNotFound:
		return chatbridge.ErrNotFound
	case status == http.StatusTooManyRequests:
		return chatbridge.ErrRateLimited
	case status >= 400 && status < 500:
		return chatbridge.ErrRejected
	}
	return chatbridge.ErrUnavailable
}

// snippet is the start of an error body, for messages.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

// StatusError is a non-2xx answer: its status, body, and the chatbridge error kind it is.
type StatusError struct {
	Status int
	Body   []byte
	Kind   error
}

func (e *StatusError) Error() string { return fmt.Sprintf("%d %s", e.Status, snippet(e.Body)) }

// HTTPStatus makes the answer's status the one events.Classify judges the event by, as
// amoCRM's.
func (e *StatusError) HTTPStatus() int { return e.Status }

// Unwrap makes errors.Is(err, chatbridge.ErrUnauthorized) and the like work.
func (e *StatusError) Unwrap() error { return e.Kind }

// IsNotFound reports whether err is a 404.
func IsNotFound(err error) bool { return errors.Is(err, chatbridge.ErrNotFound) }
