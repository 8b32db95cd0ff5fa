// Package jsonid reads ids that chat platforms send as JSON numbers or strings.
package jsonid

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// ID is an id written as a JSON number (7) or string ("7"); null is "". It is written
// back as a number when it is all digits, a string otherwise.
type ID string

// UnmarshalJSON implements json.Unmarshaler.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*id = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("id %s is neither a number nor a string", b)
		}
		if strings.ContainsAny(string(n), ".eE") {
			return fmt.Errorf("id %s is not a whole number", b)
		}
		*id = ID(n)
	}
	return nil
}

// MarshalJSON implements json.Marshaler.
func (id ID) MarshalJSON() ([]byte, error) {
	s := string(id)
	if s != "" && len(s) <= 18 && strings.Trim(s, "0123456789") == "" && (s == "0" || s[0] != '0') {
		return []byte(s), nil
	}
	return json.Marshal(s)
}
