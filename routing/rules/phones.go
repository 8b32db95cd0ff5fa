package rules

import (
	"sync"

	"github.com/crmlink/crmlink/crm"
)

// phoneMemoSize bounds the memo; past it the memo starts over, which keeps regular
// callers and their cards warm without tracking recency.
const phoneMemoSize = 10_000

// phoneMemo remembers how numbers normalised. Parsing with the numbering plan costs tens of
// microseconds, most of a plan's own time, and the same callers and cards come back.
type phoneMemo struct {
	mu     sync.RWMutex
	region string
	m      map[string]crm.Phone
}

func newPhoneMemo(region string) *phoneMemo {
	return &phoneMemo{region: region, m: make(map[string]crm.Phone)}
}

// parse is crm.ParsePhone in the memo's region; failures are not remembered.
func (p *phoneMemo) parse(raw string) (crm.Phone, error) {
	p.mu.RLock()
	phone, ok := p.m[raw]
	p.mu.RUnlock()
	if ok {
		return phone, nil
	}
	phone, err := crm.ParsePhone(raw, p.region)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	if len(p.m) >= phoneMemoSize {
		clear(p.m)
	}
	p.m[raw] = phone
	p.mu.Unlock()
	return phone, nil
}

// same reports whether a number as written on a card is phone.
func (p *phoneMemo) same(phone crm.Phone, written string) bool {
	if string(phone) == written {
		return true
	}
	q, err := p.parse(written)
	return err == nil && q == phone
}
