package amocrm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// maxBody bounds what the client reads from one response.
const maxBody = 32 << 20

// reply is a response that passed the status mapping.
type reply struct {
	status int
	body   []byte
}

// empty reports a 204, amoCRM's answer for a search or list with nothing in it.
func (r reply) empty() bool {
	return r.status == http.StatusNoContent || len(bytes.TrimSpace(r.body)) == 0
}

// do sends one API request: it waits for the rate budget, authorises, retries a 429 while
// the deadline allows (amoCRM did not process the request), refreshes an OAuth token once
// on a 401, and maps every other status to the crm errors; a 400 (or 422) keeps amoCRM's
// validation-errors in a *ValidationError, because a rejected write can only be fixed
// knowing which field of which item was wrong. A 5xx is not retried: a write may have
// happened. path carries no query; errors name method and path only, never the
// token or the query (which holds the caller's number).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte) (reply, error) {
	prio := PriorityOf(ctx)
	refreshed := false
	retries := 0
	for {
		if err := c.waitBudget(ctx, prio); err != nil {
			return reply{}, apiError(method, path, err)
		}
		token, err := c.auth.token(ctx)
		if err != nil {
			return reply{}, apiError(method, path, err)
		}
		start := time.Now()
		status, respBody, hdr, err := c.send(ctx, method, path, query, body, "Bearer "+token)
		if err != nil {
			return reply{}, apiError(method, path, err)
		}
		c.log.Debug().Str("method", method).Str("path", path).Int("status", status).
			Stringer("priority", prio).Dur("took", time.Since(start)).Msg("amocrm request")
		switch {
		case status == http.StatusOK || status == http.StatusCreated || status == http.StatusAccepted || status == http.StatusNoContent:
			return reply{status: status, body: respBody}, nil
		case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
			return reply{}, apiError(method, path, validationError(status, respBody))
		case status == http.StatusUnauthorized:
			if !refreshed {
				ok, err := c.auth.refresh(ctx, token)
				if err != nil {
					return reply{}, apiError(method, path, err)
				}
				if ok {
					refreshed = true
					continue
				}
			}
			return reply{}, apiError(method, path, crm.ErrUnauthorized)
		case status == http.StatusForbidden:
			return reply{}, apiError(method, path, crm.ErrForbidden)
		case status == http.StatusNotFound:
			return reply{}, apiError(method, path, crm.ErrNotFound)
		case status == http.StatusTooManyRequests:
			wait := c.backoffFor(retries, hdr.Get("Retry-After"))
			if !c.mayRetry(ctx, retries, wait, time.Since(start)) {
				return reply{}, apiError(method, path, fmt.Errorf("%w after %d retries", crm.ErrRateLimited, retries))
			}
			retries++
			c.log.Warn().Str("method", method).Str("path", path).Dur("backoff", wait).Int("retry", retries).Msg("amocrm rate limited, backing off")
			if err := sleepCtx(ctx, wait); err != nil {
				return reply{}, apiError(method, path, err)
			}
		case status >= 500:
			return reply{}, apiError(method, path, fmt.Errorf("%w: status %d", crm.ErrUnavailable, status))
		default:
			return reply{}, apiError(method, path, fmt.Errorf("unexpected status %d%s", status, problemDetail(respBody)))
		}
	}
}

// send makes one HTTP attempt. A network failure is crm.ErrUnavailable; a done caller
// context is reported as the context's own error so the call path can tell a timeout.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body []byte, authz string) (int, []byte, http.Header, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, u, rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/hal+json, application/json")
	req.Header.Set("User-Agent", "crmlink")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, transportError(ctx, actx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, nil, transportError(ctx, actx, err)
	}
	return resp.StatusCode, data, resp.Header, nil
}

func transportError(ctx, attempt context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if attempt.Err() != nil {
		return fmt.Errorf("%w: no answer within the request timeout", crm.ErrUnavailable)
	}
	// url.Error repeats the URL with its query; keep only the cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%w: %v", crm.ErrUnavailable, err)
}

// problemDetail renders the title and detail of an application/problem+json body.
func problemDetail(body []byte) string {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) != nil || (p.Title == "" && p.Detail == "") {
		return ""
	}
	s := ": " + p.Title
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
