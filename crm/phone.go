package crm

import (
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Phone is a phone number in E.164 form ("+74951234567"). Build one with ParsePhone so that
// "8 (495) 123-45-67", "+7 495 1234567" and "74951234567" are the same caller.
type Phone string

// ParsePhone normalises a number as dialled or written on a card. region is the ISO country
// used when the number has no international prefix ("RU"). A national trunk prefix such as
// Russia's 8 is understood by the region's numbering plan.
func ParsePhone(raw, region string) (Phone, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("parse phone: empty number")
	}
	// Digits-only numbers that already carry a country code are common in CDRs and trunks
	// ("74951234567"): when the national reading is not a valid number, read it as international.
	if s[0] != '+' && isDigits(s) && len(s) > 10 {
		if nat, err := phonenumbers.Parse(s, region); err != nil || !phonenumbers.IsValidNumber(nat) {
			if n, err := phonenumbers.Parse("+"+s, region); err == nil && phonenumbers.IsValidNumber(n) {
				return Phone(phonenumbers.Format(n, phonenumbers.E164)), nil
			}
		}
	}
	n, err := phonenumbers.Parse(s, region)
	if err != nil {
		return "", fmt.Errorf("parse phone %q: %w", raw, err)
	}
	if !phonenumbers.IsPossibleNumber(n) {
		return "", fmt.Errorf("parse phone %q: not a possible number in region %s", raw, region)
	}
	return Phone(phonenumbers.Format(n, phonenumbers.E164)), nil
}

// National returns the national significant number (no country code, no trunk prefix):
// the string amoCRM's free-text search matches whatever way the card spells the number.
func (p Phone) National() string {
	n, err := phonenumbers.Parse(string(p), "")
	if err != nil {
		return strings.TrimPrefix(string(p), "+")
	}
	return phonenumbers.GetNationalSignificantNumber(n)
}

// SameNumber reports whether a number as written on a card is this phone.
func (p Phone) SameNumber(written, region string) bool {
	q, err := ParsePhone(written, region)
	return err == nil && q == p
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
