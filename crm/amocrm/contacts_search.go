package amocrm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/crmlink/crmlink/crm"
)

// emailFieldCode is the field_code amoCRM gives the system email field of contacts.
const emailFieldCode = "EMAIL"

// FindContactsByEmail searches amoCRM's free-text query for the address, then keeps only
// contacts whose EMAIL field holds it (case aside): the query also matches a note or a
// name that merely mentions the address.
func (c *Client) FindContactsByEmail(ctx context.Context, email string) ([]crm.Contact, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return nil, apiError(http.MethodGet, contactsPath, errors.New("empty email"))
	}
	return c.findContacts(ctx, email, func(d contactDTO) bool {
		for _, v := range d.fieldValues(0, emailFieldCode) {
			if strings.EqualFold(strings.TrimSpace(v), email) {
				return true
			}
		}
		return false
	})
}

// FindContactsByField searches for a value of one of the account's own fields (an INN, a
// client number) and keeps only contacts whose field fieldID holds it. Values are compared
// without surrounding spaces and case; a value of digits and separators ("77 01-234567")
// matches the same digits written otherwise.
func (c *Client) FindContactsByField(ctx context.Context, fieldID int64, value string) ([]crm.Contact, error) {
	value = strings.TrimSpace(value)
	switch {
	case fieldID <= 0:
		return nil, apiError(http.MethodGet, contactsPath, errors.New("no custom field id"))
	case value == "":
		return nil, apiError(http.MethodGet, contactsPath, errors.New("empty field value"))
	}
	return c.findContacts(ctx, value, func(d contactDTO) bool {
		for _, v := range d.fieldValues(fieldID, "") {
			if sameFieldValue(v, value) {
				return true
			}
		}
		return false
	})
}

// findContacts runs the free-text query (every page, with lead ids) and keeps the contacts
// keep accepts.
func (c *Client) findContacts(ctx context.Context, query string, keep func(contactDTO) bool) ([]crm.Contact, error) {
	q := url.Values{"query": {query}, "with": {"leads"}, "limit": {"250"}}
	found, err := listAll[contactDTO](ctx, c, contactsPath, q, "contacts")
	if err != nil {
		return nil, err
	}
	var out []crm.Contact
	for _, d := range found {
		if keep(d) {
			out = append(out, d.contact())
		}
	}
	return out, nil
}

// fieldValues returns the text of the values of the field with this id (when id is not 0)
// or this code; numbers come back as written.
func (d contactDTO) fieldValues(id int64, code string) []string {
	var out []string
	for _, f := range d.CustomFieldsValues {
		if (id != 0 && f.FieldID != id) || (id == 0 && f.FieldCode != code) {
			continue
		}
		for _, v := range f.Values {
			var s string
			if json.Unmarshal(v.Value, &s) == nil {
				out = append(out, s)
				continue
			}
			var n json.Number
			if json.Unmarshal(v.Value, &n) == nil {
				out = append(out, n.String())
			}
		}
	}
	return out
}

// sameFieldValue compares two field values case-insensitively, and values made of digits
// and separators by their digits.
func sameFieldValue(written, want string) bool {
	written = strings.TrimSpace(written)
	if strings.EqualFold(written, want) {
		return true
	}
	dw, ok1 := digitsOnly(written)
	dv, ok2 := digitsOnly(want)
	return ok1 && ok2 && dw != "" && dw == dv
}

// digitsOnly returns the digits of s; ok is false when s holds anything but digits, spaces
// and the separators - . /.
func digitsOnly(s string) (string, bool) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '/':
		default:
			return "", false
		}
	}
	return b.String(), true
}

// accountFields writes values of the account's own fields, one entry per field id, in the
// order the ids first appear; empty values are left out.
func accountFields(fs []crm.FieldValue) []fieldOut {
	var out []fieldOut
	at := map[int64]int{}
	for _, f := range fs {
		v := strings.TrimSpace(f.Value)
		if f.FieldID <= 0 || v == "" {
			continue
		}
		i, ok := at[f.FieldID]
		if !ok {
			i = len(out)
			at[f.FieldID] = i
			out = append(out, fieldOut{FieldID: f.FieldID})
		}
		out[i].Values = append(out[i].Values, fieldValueOut{Value: v})
	}
	return out
}
