package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/crmlink/crmlink/internal/testrig"
)

// TestRouteQueriesOverHTTPDoNotStarveCalls: a script asks GET /v1/route for a stream of
// numbers nobody has seen (each a cold amoCRM lookup) while a client calls in. The call's
// lookup still gets amoCRM's requests at once and the owner's phone rings within
// lookup_timeout; the HTTP questions get a few lookups and then one a second, never the
// requests kept for calls.
func TestRouteQueriesOverHTTPDoNotStarveCalls(t *testing.T) {
	s := startStack(t)
	anna := managerPhone(t, s.ast, "101")
	s.crm.ResetCounters()

	var (
		asked, answered atomic.Int64
		next            atomic.Int64
		wg              sync.WaitGroup
	)
	done := make(chan struct{})
	query := func() {
		n := next.Add(1)
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/v1/route?number=8495300%04d", s.api, n), nil)
		req.Header.Set("Authorization", "Bearer "+s.cfg.HTTP.Token)
		asked.Add(1)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		var d struct {
			Reason string `json:"reason"`
		}
		if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&d) == nil && d.Reason == "not_found" {
			answered.Add(1) // amoCRM was asked and said nobody has the number
		}
	}
	burstStart := time.Now()
	// Six clients at once, each asking again as soon as it has its answer, at most 20 a
	// second each, until the call is decided.
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				query()
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}()
	}
	stop := sync.OnceFunc(func() { close(done); wg.Wait() })
	t.Cleanup(stop)
	testrig.WaitFor(t, 10*time.Second, "60 HTTP questions asked", func() bool { return asked.Load() >= 60 })

	started := time.Now()
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)
	in := nextIncoming(t, anna, lookupTimeout+2*time.Second)
	rang := time.Since(started)
	answerAndCheckBridged(t, s, in, call, annaClient, annaUser, "crm")
	stop()
	burst := time.Since(burstStart)

	counts := s.crm.RequestCounts()
	t.Logf("owner's phone rang %s after dialling; %d HTTP questions, %d answered by amoCRM; amoCRM requests: %v",
		rang.Round(time.Millisecond), asked.Load(), answered.Load(), counts)
	assert.Less(t, rang, lookupTimeout+time.Second, "the owner's phone rang within lookup_timeout plus SIP setup")
	assert.GreaterOrEqual(t, answered.Load(), int64(3), "the HTTP questions were served (not refused), the first ones by amoCRM")
	// The HTTP questions: 3 at once, then one a second over the whole run; the call: its
	// contact search and its leads.
	maxInquiries := 3 + int(burst/time.Second) + 1
	assert.LessOrEqual(t, counts["GET /api/v4/contacts"], maxInquiries+1, "cold HTTP lookups are paced, the call adds one search")
	assert.Equal(t, 1, counts["GET /api/v4/leads"], "the call's own lead read")
}
