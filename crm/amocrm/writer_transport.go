package amocrm

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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

// write sends one write request with payload as its JSON body, with the context's priority
// (background unless the caller marked it). A 400 comes back as a *ValidationError (see do).
func (c *Client) write(ctx context.Context, method, path string, payload any) (reply, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return reply{}, apiError(method, path, fmt.Errorf("encode request: %w", err))
	}
	return c.do(ctx, method, path, nil, body)
}
