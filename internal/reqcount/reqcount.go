// Package reqcount counts the HTTP requests an emulator (the amoCRM and chat sandboxes)
// received, by "METHOD /path", for tests' read-back.
package reqcount

import (
	"maps"
	"net/http"
	"strings"
	"sync"
)

// Counter counts requests; the zero value is ready and safe for concurrent use.
type Counter struct {
	mu     sync.Mutex
	counts map[string]int
}

// Add counts one request under "METHOD /path" (no query).
func (c *Counter) Add(r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[r.Method+" "+r.URL.Path]++
}

// Requests returns the count for a key: "METHOD /path", or "/path" for any method.
func (c *Counter) Requests(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.Contains(key, " ") {
		return c.counts[key]
	}
	n := 0
	for k, v := range c.counts {
		if _, path, _ := strings.Cut(k, " "); path == key {
			n += v
		}
	}
	return n
}

// All returns every count by "METHOD /path".
func (c *Counter) All() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := maps.Clone(c.counts)
	if out == nil {
		out = map[string]int{}
	}
	return out
}

// Reset forgets every count.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.counts)
}
