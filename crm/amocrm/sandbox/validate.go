package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// Limits of a write request. amoCRM takes at most 250 entities a request (50 recommended).
const (
	maxWriteItems = 250
	maxWriteBody  = 8 << 20
)

// Validation codes, in the style of amoCRM's validation-errors.
const (
	codeNotBlank    = "NotBlank"
	codeChoice      = "NotSupportedChoice"
	codeType        = "InvalidType"
	codeNotFound    = "NotFound"
	codeNotUnique   = "NotUnique"
	codeTooMany     = "TooMany"
	detailNotBlank  = "This value should not be blank."
	detailChoice    = "The value you selected is not a valid choice."
	detailNotFound  = "The entity does not exist."
	detailNegative  = "This value should be greater than or equal to 0."
	detailNotString = "This value should be of type string."
)

// invalid collects what a write request got wrong, per item as amoCRM reports it: the
// item's request_id, then a code, a path inside the item and a detail for each problem.
type invalid struct {
	errs []validationError
}

func (v *invalid) add(requestID, code, path, detail string) {
	for i := range v.errs {
		if v.errs[i].RequestID == requestID {
			v.errs[i].Errors = append(v.errs[i].Errors, validationIssue{Code: code, Path: path, Detail: detail})
			return
		}
	}
	v.errs = append(v.errs, validationError{RequestID: requestID, Errors: []validationIssue{{Code: code, Path: path, Detail: detail}}})
}

func (v *invalid) failed() bool { return len(v.errs) > 0 }

// write answers 400 "Request validation failed" with everything collected.
func (v *invalid) write(w http.ResponseWriter) {
	writeProblemBody(w, problem{Status: http.StatusBadRequest, Detail: "Request validation failed", ValidationErrors: v.errs})
}

// item is one element of a write request's array, with the request_id its answer echoes:
// the client's, or its index when it sent none (as amoCRM does).
type item struct {
	raw       json.RawMessage
	requestID string
}

// readItems reads a write request's body: a JSON array of 1 to 250 objects. A body that is
// no such array is answered here (400) and ok is false.
func readItems(w http.ResponseWriter, r *http.Request) ([]item, bool) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxWriteBody+1))
	if err != nil || len(data) > maxWriteBody {
		writeProblem(w, http.StatusBadRequest, "the body could not be read or is larger than 8 MiB")
		return nil, false
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		writeProblem(w, http.StatusBadRequest, "the body must be a JSON array of objects")
		return nil, false
	}
	var v invalid
	switch {
	case len(raws) == 0:
		v.add("0", codeNotBlank, "", "This collection should contain 1 element or more.")
	case len(raws) > maxWriteItems:
		v.add("0", codeTooMany, "", "This collection should contain 250 elements or less.")
	}
	items := make([]item, 0, len(raws))
	for i, raw := range raws {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] != '{' {
			v.add(strconv.Itoa(i), codeType, "", "This value should be of type object.")
			continue
		}
		var id struct {
			RequestID json.RawMessage `json:"request_id"`
		}
		_ = json.Unmarshal(raw, &id)
		it := item{raw: raw, requestID: strconv.Itoa(i)}
		if len(id.RequestID) > 0 && string(id.RequestID) != "null" {
			var s string
			if json.Unmarshal(id.RequestID, &s) != nil {
				v.add(it.requestID, codeType, "request_id", detailNotString)
				continue
			}
			if s != "" {
				it.requestID = s
			}
		}
		items = append(items, it)
	}
	if v.failed() {
		v.write(w)
		return nil, false
	}
	return items, true
}

// applyItems serves the items of a write request (see readItems): each is decoded into an
// In and checked and built by build; when any is invalid, the answer is 400 with every
// problem in amoCRM's format, nothing changes and ok is false. Else apply stores or applies
// each built value in order, with the request's time (Unix seconds), and gives its entry of
// the answer, which the caller writes with rn. build and apply run with s.mu held; it is
// released on return.
func applyItems[In, E, Out any](s *Server, w http.ResponseWriter, r *http.Request,
	build func(reqID string, in In, v *invalid) E,
	apply func(rn renderer, e E, reqID string, now int64) Out) (rn renderer, out []Out, ok bool) {
	items, ok := readItems(w, r)
	if !ok {
		return renderer{}, nil, false
	}
	s.mu.Lock()
	var v invalid
	built := make([]E, len(items))
	for i, it := range items {
		var in In
		if decodeItem(it, &in, &v) {
			built[i] = build(it.requestID, in, &v)
		}
	}
	if v.failed() {
		s.mu.Unlock()
		v.write(w)
		return renderer{}, nil, false
	}
	rn = s.renderer(r)
	now := s.now().Unix()
	out = make([]Out, 0, len(built))
	for i, e := range built {
		out = append(out, apply(rn, e, items[i].requestID, now))
	}
	s.mu.Unlock()
	return rn, out, true
}

// decodeItem decodes one item; a value of the wrong type is reported at its path.
func decodeItem(it item, dst any, v *invalid) bool {
	err := json.Unmarshal(it.raw, dst)
	if err == nil {
		return true
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Type != nil {
		v.add(it.requestID, codeType, te.Field, fmt.Sprintf("This value should be of type %s.", jsonKind(te.Type.Kind().String())))
		return false
	}
	v.add(it.requestID, codeType, "", "This value is not valid.")
	return false
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "int"
	case goKind == "slice":
		return "array"
	case goKind == "struct", goKind == "map":
		return "object"
	}
	return goKind
}

// looseString is a value amoCRM takes as a string or a number (a user id or a name, a phone).
type looseString string

func (l *looseString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = looseString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeFor[string]()}
	}
	*l = looseString(n.String())
	return nil
}

// numberOrString renders a stored loose value back the way it most likely came: digits as
// a number, anything else as a string.
func numberOrString(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	return s
}

// checkUser reports a responsible user the account does not have; 0 means "unset". s.mu is
// held.
func (s *Server) checkUser(v *invalid, requestID, path string, id int64) {
	if id < 0 || (id > 0 && s.st.users[id] == nil) {
		v.add(requestID, codeChoice, path, detailChoice)
	}
}

// orAPIUser is the responsible of a new entity: the given user, else the token's user.
func (s *Server) orAPIUser(id int64) int64 {
	if id > 0 {
		return id
	}
	return s.settings.APIUserID
}

// entityExists reports whether an entity of an amoCRM entity type ("leads", "contacts",
// "companies") exists; s.mu is held.
func (st *store) entityExists(entityType string, id int64) bool {
	switch entityType {
	case "leads":
		return st.leads[id] != nil
	case "contacts":
		return st.contacts[id] != nil
	case "companies":
		return st.companies[id] != nil
	}
	return false
}

// created answers a creation: _embedded[key] holds one entry per item, in order.
func (rn renderer) writeCreated(w http.ResponseWriter, r *http.Request, key string, entries any) {
	writeHAL(w, map[string]any{
		"_links":    links{Self: link{Href: rn.base + r.URL.Path}},
		"_embedded": map[string]any{key: entries},
	})
}

// createdRef is the answer's entry for one created entity.
type createdRef struct {
	ID        int64  `json:"id"`
	RequestID string `json:"request_id"`
	Links     links  `json:"_links"`
}

// updatedRef is the answer's entry for one updated entity.
type updatedRef struct {
	ID        int64  `json:"id"`
	UpdatedAt int64  `json:"updated_at"`
	RequestID string `json:"request_id"`
	Links     links  `json:"_links"`
}
