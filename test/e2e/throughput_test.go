package e2e

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
)

// TestRoutedCallReadsNothingAfterItEnds: a known client's call is routed to the owner,
// answered and hung up; its note lands on the open deal routing found, and after the call
// crmlink sends amoCRM that note and nothing else (no second contact search, no lead read).
func TestRoutedCallReadsNothingAfterItEnds(t *testing.T) {
	s := startStack(t, withScenarios)
	anna := managerPhone(t, s.ast, "101")
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)
	in := nextIncoming(t, anna, callWait)
	answerAndCheckBridged(t, s, in, call, annaClient, annaUser, "crm")
	during := s.crm.RequestCounts() // the routing lookup
	hangupBoth(t, in, call)
	o := s.nextOutcome(t)
	require.NotNil(t, o.Decision.Client, "the outcome carries what routing found")

	c := waitCreated(t, s, "the call note", func(c sandbox.Created) bool { return len(c.Notes) > 0 })
	require.Len(t, c.Notes, 1)
	assert.Equal(t, int64(4001), c.Notes[0].EntityID, "on the open deal routing found")
	after := map[string]int{}
	for k, n := range s.crm.RequestCounts() {
		if d := n - during[k]; d != 0 {
			after[k] = d
		}
	}
	assert.Equal(t, map[string]int{"POST /api/v4/leads/notes": 1}, after, "amoCRM requests after the call ended")
	assert.Positive(t, during["GET /api/v4/contacts"], "routing looked the client up during the call")
}
