package sip

import (
	"fmt"
	"strings"

	sipmsg "github.com/emiago/sipgo/sip"
)

// Bounds on CRM-derived values that end up in a SIP message.
const (
	maxUserLength = 64
	// maxContacts keeps a 302 well inside sipgo's UDP limit (1300 bytes per message).
	maxContacts = 8
)

// contactUser returns the SIP user for an Asterisk dial target, the resource between the
// technology and any "@": "PJSIP/101" → "101", "PJSIP/79161234567@trunk" → "79161234567".
// It reports false for anything that is not a plain user.
func contactUser(endpoint string) (string, bool) {
	_, resource, ok := strings.Cut(endpoint, "/")
	if !ok {
		return "", false
	}
	user, _, _ := strings.Cut(resource, "@")
	if !validUser(user) {
		return "", false
	}
	return user, true
}

// validUser accepts 1..64 of [A-Za-z0-9._-+]: phone numbers (E.164 with "+") and extension
// names. Everything that could end a header line or change the URI's structure is out.
func validUser(s string) bool {
	if len(s) == 0 || len(s) > maxUserLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) && s[i] != '+' {
			return false
		}
	}
	return true
}

func isTokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

const userPlaceholder = "{user}"

// templateSentinel stands in for {user} while the template is parsed; it is a valid user.
const templateSentinel = "crmlink-user-placeholder"

// parseContactTemplate checks a template such as "sip:{user}@127.0.0.1:5060" and returns it
// as a URI whose User is replaced per target.
func parseContactTemplate(tmpl string) (sipmsg.Uri, error) {
	const example = `write it like "sip:{user}@127.0.0.1:5060"`
	if n := strings.Count(tmpl, userPlaceholder); n != 1 {
		return sipmsg.Uri{}, fmt.Errorf("contact template %q must contain {user} exactly once; %s", tmpl, example)
	}
	uri, err := parseSIPURI(strings.Replace(tmpl, userPlaceholder, templateSentinel, 1))
	if err != nil {
		return sipmsg.Uri{}, fmt.Errorf("contact template %q: %w; %s", tmpl, err, example)
	}
	if uri.User != templateSentinel {
		return sipmsg.Uri{}, fmt.Errorf("contact template %q: {user} must be the whole user part; %s", tmpl, example)
	}
	return uri, nil
}

// parseFallbackContact checks the fallback URI, e.g. "sip:fallback@127.0.0.1:5060".
func parseFallbackContact(s string) (sipmsg.Uri, error) {
	if strings.Contains(s, userPlaceholder) {
		return sipmsg.Uri{}, fmt.Errorf("fallback contact %q: {user} has no meaning there; give a fixed URI such as \"sip:fallback@127.0.0.1:5060\"", s)
	}
	uri, err := parseSIPURI(s)
	if err != nil {
		return sipmsg.Uri{}, fmt.Errorf("fallback contact %q: %w; write it like \"sip:fallback@127.0.0.1:5060\"", s, err)
	}
	return uri, nil
}

func parseSIPURI(s string) (sipmsg.Uri, error) {
	if strings.ContainsAny(s, " \t\r\n<>\"'") || len(s) > 256 {
		return sipmsg.Uri{}, fmt.Errorf("not a plain SIP URI")
	}
	var uri sipmsg.Uri
	if err := sipmsg.ParseUri(s, &uri); err != nil {
		return sipmsg.Uri{}, fmt.Errorf("not a SIP URI (%v)", err)
	}
	if uri.Scheme != "sip" && uri.Scheme != "sips" {
		return sipmsg.Uri{}, fmt.Errorf("scheme must be sip or sips")
	}
	if uri.Host == "" {
		return sipmsg.Uri{}, fmt.Errorf("no host")
	}
	if len(uri.Headers) > 0 {
		return sipmsg.Uri{}, fmt.Errorf("URI headers (?…) are not allowed")
	}
	return uri, nil
}
