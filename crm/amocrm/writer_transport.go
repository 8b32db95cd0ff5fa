package amocrm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// ValidationError is amoCRM's 400 "Request validation failed" to a write: for each item it
// rejected (named by the request_id amoCRM echoes, or the item's index in the request), the
// fields and why. A 400 rejects the whole request: none of its items was created. Find it
// with errors.As.
type ValidationError struct {
	Status int
	Title  string
	Detail string
	Items  []ValidationItem
}

// ValidationItem is one rejected item of a request.
type ValidationItem struct {
	RequestID string
	Issues    []ValidationIssue
}

// ValidationIssue is one rejected field: amoCRM's code, the field's path inside the item
// (such as custom_fields_values.0.values.0.value) and its explanation.
type ValidationIssue struct {
	Code   string
	Path   string
	Detail string
}

// maxIssuesShown bounds the issues an error message lists; Items keeps them all.
const maxIssuesShown = 10

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "status %d", e.Status)
	for _, s := range []string{e.Title, e.Detail} {
		if s != "" {
			b.WriteString(": " + s)
		}
	}
	shown, total := 0, 0
	for _, it := range e.Items {
		for _, is := range it.Issues {
			total++
			if shown == maxIssuesShown {
				continue
			}
			sep := "; "
			if shown == 0 {
				sep = ": "
			}
			path := is.Path
			if path == "" {
				path = "(item)"
			}
			fmt.Fprintf(&b, "%sitem %s: %s: %s", sep, it.RequestID, path, is.Detail)
			if is.Code != "" {
				fmt.Fprintf(&b, " (%s)", is.Code)
			}
			shown++
		}
	}
	if total > shown {
		fmt.Fprintf(&b, "; and %d more", total-shown)
	}
	return b.String()
}

// validationError reads a 400's application/problem+json body.
func validationError(status int, body []byte) *ValidationError {
	var p struct {
		Title            string `json:"title"`
		Detail           string `json:"detail"`
		ValidationErrors []struct {
			RequestID json.RawMessage `json:"request_id"`
			Errors    []struct {
				Code   string `json:"code"`
				Path   string `json:"path"`
				Detail string `json:"detail"`
			} `json:"errors"`
		} `json:"validation-errors"`
	}
	e := &ValidationError{Status: status}
	if json.Unmarshal(body, &p) != nil {
		return e
	}
	e.Title, e.Detail = p.Title, p.Detail
	for _, ve := range p.ValidationErrors {
		it := ValidationItem{RequestID: strings.Trim(string(ve.RequestID), `"`)}
		for _, is := range ve.Errors {
			it.Issues = append(it.Issues, ValidationIssue{Code: is.Code, Path: is.Path, Detail: is.Detail})
		}
		e.Items = append(e.Items, it)
	}
	return e
}

// write sends one write request with payload as its JSON body. It spends the budget with
// the context's priority (background unless the caller marked it) and maps statuses like
// do, with one difference: a 400 keeps amoCRM's validation-errors in a *ValidationError,
// because a rejected write can only be fixed knowing which field of which item was wrong,
// and do reports a bare status. A 429 is retried like in do (amoCRM did not process the
// request); a 5xx is not, since the write may have happened.
func (c *Client) write(ctx context.Context, method, path string, payload any) (reply, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return reply{}, apiError(method, path, fmt.Errorf("encode request: %w", err))
	}
	prio := PriorityOf(ctx)
	refreshed := false
	retries := 0
	for {
		if err := c.limiter.wait(ctx, prio); err != nil {
			return reply{}, apiError(method, path, err)
		}
		token, err := c.auth.token(ctx)
		if err != nil {
			return reply{}, apiError(method, path, err)
		}
		start := time.Now()
		status, respBody, hdr, err := c.send(ctx, method, path, url.Values(nil), body, "Bearer "+token)
		if err != nil {
			return reply{}, apiError(method, path, err)
		}
		c.log.Debug().Str("method", method).Str("path", path).Int("status", status).
			Stringer("priority", prio).Dur("took", time.Since(start)).Msg("amocrm request")
		switch {
		case status == http.StatusOK || status == http.StatusCreated || status == http.StatusAccepted || status == http.StatusNoContent:
			return reply{status: status, body: respBody}, nil
		case status == http.StatusBadRequest:
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
			if !c.mayRetry(ctx, retries, wait) {
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
