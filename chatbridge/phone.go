package chatbridge

import (
	"strings"

	"github.com/crmlink/crmlink/crm"
)

// MessengerPhone reads a client's number as chat platforms write it: international digits
// without "+" (a WhatsApp chat id, Wazzup's and ChatApp's phones) are read as
// international; anything else as crm.ParsePhone reads it in region. It returns the E.164
// number ("" when unreadable) and the raw text trimmed ("" when there was none).
func MessengerPhone(raw, region string) (crm.Phone, string) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", ""
	}
	number := raw
	if strings.Trim(number, "0123456789") == "" {
		number = "+" + number
	}
	p, err := crm.ParsePhone(number, region)
	if err != nil {
		return "", raw
	}
	return p, raw
}
