package routing

import (
	"sync"

	"github.com/crmlink/crmlink/crm"
)

// phoneMemoSize bounds the normalisation memo; past it the memo starts over, which is
// cheaper than tracking recency and still keeps regular callers warm.
const phoneMemoSize = 10_000

// phoneMemo remembers how caller ids normalised: parsing with the numbering plan costs
// around 17µs, most of a cached decision, and the same callers call again and again.
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
