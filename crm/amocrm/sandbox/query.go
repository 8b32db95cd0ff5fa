package sandbox

import (
	"strings"
	"unicode"
)

// matcher is amoCRM's free-text query: a case-insensitive substring of any filled field,
// and for a query that looks like a phone number, a substring of any field's digits. So
// "4951234567" finds "+7 (495) 123-45-67" on the card, but also a name or a comment that
// merely mentions the number, which is why a client must check the PHONE field itself.
type matcher struct {
	text   string
	digits string
}

func newMatcher(q string) matcher {
	m := matcher{text: strings.ToLower(strings.TrimSpace(q))}
	if phoneLike(q) {
		m.digits = digitsOf(q)
	}
	return m
}

func (m matcher) empty() bool { return m.text == "" }

func (m matcher) matches(values ...string) bool {
	for _, v := range values {
		if strings.Contains(strings.ToLower(v), m.text) {
			return true
		}
		if m.digits != "" && strings.Contains(digitsOf(v), m.digits) {
			return true
		}
	}
	return false
}

func (m matcher) contact(c *Contact) bool {
	vals := append(append([]string{c.Name}, c.Phones...), c.Emails...)
	for _, v := range c.Fields {
		vals = append(vals, v)
	}
	return m.matches(vals...)
}

// phoneLike reports a query made of at least three digits and phone punctuation only.
func phoneLike(q string) bool {
	n := 0
	for _, r := range q {
		switch {
		case r >= '0' && r <= '9':
			n++
		case r == '+' || r == '-' || r == '(' || r == ')' || unicode.IsSpace(r):
		default:
			return false
		}
	}
	return n >= 3
}

func digitsOf(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
