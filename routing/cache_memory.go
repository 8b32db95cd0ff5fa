package routing

import (
	"context"
	"sync"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// DefaultMemoryCacheSize bounds the in-process cache: an entry is well under a kilobyte, so
// this caps it near tens of megabytes while holding every caller of a large call centre.
const DefaultMemoryCacheSize = 100_000

// evictionSample is how many entries are looked at to choose one to evict when the cache is
// full; a small random sample approximates "expires soonest" without keeping an ordered list.
const evictionSample = 8

// sweepInterval spaces out full sweeps for expired entries in a full cache.
const sweepInterval = time.Minute

// MemoryCache is the OwnerCache of the embedded (single instance, no Redis) setup: a map
// with expiry under one mutex, bounded in size.
type MemoryCache struct {
	mu      sync.Mutex
	max     int
	now     func() time.Time
	entries map[crm.Phone]memItem
	index   map[EntityKey]map[crm.Phone]time.Time // link expiry
	// nextSweep is when a full cache may next look for expired entries.
	nextSweep time.Time
}

type memItem struct {
	e       Entry
	expires time.Time
}

// NewMemoryCache returns a cache holding at most maxEntries numbers (DefaultMemoryCacheSize
// when maxEntries <= 0). now is the clock for expiry (time.Now when nil).
func NewMemoryCache(maxEntries int, now func() time.Time) *MemoryCache {
	if maxEntries <= 0 {
		maxEntries = DefaultMemoryCacheSize
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryCache{
		max:     maxEntries,
		now:     now,
		entries: make(map[crm.Phone]memItem),
		index:   make(map[EntityKey]map[crm.Phone]time.Time),
	}
}

// inProcess marks the cache as never blocking, so the Router reads it in place instead of on
// a goroutine guarded by the call's deadline.
func (*MemoryCache) inProcess() {}

// Len returns the number of entries held, expired ones included until they are swept.
func (c *MemoryCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Get implements OwnerCache.
func (c *MemoryCache) Get(_ context.Context, phone crm.Phone) (Entry, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.entries[phone]
	if !ok {
		return Entry{}, false, nil
	}
	if !c.now().Before(it.expires) {
		c.removeLocked(phone, it)
		return Entry{}, false, nil
	}
	e := it.e
	e.Leads = append([]LeadRef(nil), e.Leads...) // callers may edit their copy
	return e, true, nil
}

// Set implements OwnerCache.
func (c *MemoryCache) Set(_ context.Context, e Entry, ttl time.Duration) error {
	now := c.now()
	expires := now.Add(ttl)
	e.Leads = append([]LeadRef(nil), e.Leads...)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[e.Phone]; ok {
		c.removeLocked(e.Phone, old)
	} else if len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	c.entries[e.Phone] = memItem{e: e, expires: expires}
	for _, k := range e.Entities() {
		phones := c.index[k]
		if phones == nil {
			phones = make(map[crm.Phone]time.Time, 1)
			c.index[k] = phones
		}
		phones[e.Phone] = expires
	}
	return nil
}

// Delete implements OwnerCache.
func (c *MemoryCache) Delete(_ context.Context, phone crm.Phone) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if it, ok := c.entries[phone]; ok {
		c.removeLocked(phone, it)
	}
	return nil
}

// Phones implements OwnerCache.
func (c *MemoryCache) Phones(_ context.Context, key EntityKey) ([]crm.Phone, error) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []crm.Phone
	for p, exp := range c.index[key] {
		if now.Before(exp) {
			out = append(out, p)
		}
	}
	return out, nil
}

// Unlink implements OwnerCache.
func (c *MemoryCache) Unlink(_ context.Context, key EntityKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.index, key)
	return nil
}

// removeLocked drops an entry with its links, so the index never grows past the entries.
func (c *MemoryCache) removeLocked(phone crm.Phone, it memItem) {
	delete(c.entries, phone)
	for _, k := range it.e.Entities() {
		if phones := c.index[k]; phones != nil {
			delete(phones, phone)
			if len(phones) == 0 {
				delete(c.index, k)
			}
		}
	}
}

// evictLocked makes room for one entry: expired entries go first (a full sweep, at most once
// per sweepInterval so a cache that stays full does not pay O(n) on every insert); failing
// that, the entry expiring soonest among a random sample (map iteration order is random).
func (c *MemoryCache) evictLocked(now time.Time) {
	if !now.Before(c.nextSweep) {
		c.nextSweep = now.Add(sweepInterval)
		for p, it := range c.entries {
			if !now.Before(it.expires) {
				c.removeLocked(p, it)
			}
		}
		if len(c.entries) < c.max {
			return
		}
	}
	var (
		victim  crm.Phone
		vitem   memItem
		sampled int
	)
	for p, it := range c.entries {
		if sampled == 0 || it.expires.Before(vitem.expires) {
			victim, vitem = p, it
		}
		sampled++
		if sampled == evictionSample {
			break
		}
	}
	c.removeLocked(victim, vitem)
}
