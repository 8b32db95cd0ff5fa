package crm

import "sync"

// phoneMemoSize bounds a PhoneMemo; past it the memo starts over, which is cheaper than
// tracking recency and still keeps regular callers and their cards warm.
const phoneMemoSize = 10_000

// PhoneMemo remembers how numbers normalised. Parsing with the numbering plan costs tens
// of microseconds (most of a cached routing decision) and the same callers and cards come
// back again and again. Safe for concurrent use.
type PhoneMemo struct {
	mu     sync.RWMutex
	region string
	m      map[string]Phone
}

// NewPhoneMemo parses in region (see ParsePhone).
func NewPhoneMemo(region string) *PhoneMemo {
	return &PhoneMemo{region: region, m: make(map[string]Phone)}
}

// Parse is ParsePhone in the memo's region; failures are not remembered.
func (p *PhoneMemo) Parse(raw string) (Phone, error) {
	p.mu.RLock()
	phone, ok := p.m[raw]
	p.mu.RUnlock()
	if ok {
		return phone, nil
	}
	phone, err := ParsePhone(raw, p.region)
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

// Same reports whether a number as written on a card is phone.
func (p *PhoneMemo) Same(phone Phone, written string) bool {
	if string(phone) == written {
		return true
	}
	q, err := p.Parse(written)
	return err == nil && q == phone
}
