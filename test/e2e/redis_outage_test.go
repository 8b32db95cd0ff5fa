package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/routing"
)

// TestRedisOutageDoesNotStopRouting: with the owner cache's Redis unreachable (its answers
// lost on the way, as behind a blackholed link), calls are decided by amoCRM within its own latency instead of waiting the
// lookup timeout on Redis and falling back as timeout; once Redis is reachable again the
// cache answers calls again. The calls are decided through the entry point FastAGI and the
// SIP redirect use.
func TestRedisOutageDoesNotStopRouting(t *testing.T) {
	var link *netCut
	s := startStack(t, func(c *config.Config) {
		link = newNetCut(t, c.Redis.Addrs[0])
		c.Redis.Addrs = []string{link.addr()}
	})
	managerPhone(t, s.ast, "101")
	managerPhone(t, s.ast, "102")
	decide := func(number string) routing.Decision {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return s.app.Decider.Decide(ctx, routing.Call{Caller: number, Called: ariExten})
	}

	require.Equal(t, routing.SourceCRM, decide(annaClient).Source)
	require.Equal(t, routing.SourceCache, decide(annaClient).Source, "Redis holds Anna's client before the outage")

	link.stall() // Redis's answers are lost from now on: a blackholed link
	s.crm.ResetCounters()
	// Anna's client is in the unreachable cache, Boris's is not: both come from amoCRM (the
	// first call finds Redis silent, the second skips it). Two cold lookups after the one
	// above stay within amoCRM's 7 requests a second.
	for _, c := range []struct {
		number string
		owner  int64
	}{{annaClient, annaUser}, {borisClient, borisUser}} {
		d := decide(c.number)
		assert.Equal(t, routing.Routed, d.Result, "%s during the outage: steps %+v", c.number, d.Steps)
		assert.Equal(t, c.owner, int64(d.Owner))
		assert.Equal(t, routing.SourceCRM, d.Source)
		assert.Less(t, d.Latency, lookupTimeout/4, "%s decided within amoCRM's latency plus one short look at Redis, not the lookup timeout (%s): steps %+v", c.number, lookupTimeout, d.Steps)
	}
	reqs := 0
	for _, n := range s.crm.RequestCounts() {
		reqs += n
	}
	assert.Positive(t, reqs, "the decisions came from amoCRM")
	assert.LessOrEqual(t, reqs, 2*2, "at most one cold lookup (contact search and leads) per decision")
	t.Logf("amoCRM requests for 2 decisions during the outage: %v", s.crm.RequestCounts())

	link.cut() // the link is back: connections reset, new ones get through
	mended := time.Now()
	require.Eventually(t, func() bool { return decide(annaClient).Source == routing.SourceCache }, 10*time.Second, 50*time.Millisecond,
		"calls use the Redis cache again once it is reachable")
	t.Logf("the cache answered again %s after the link was mended", time.Since(mended).Round(time.Millisecond))
	s.crm.ResetCounters()
	assert.Equal(t, routing.SourceCache, decide(annaClient).Source)
	assert.Empty(t, s.crm.RequestCounts(), "a cached answer asks amoCRM nothing")
}
