package scenarios_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/scenarios"
)

// A call without a client number (a withheld caller id, an internal extension, Asterisk's
// placeholder) is not an error: it creates nothing, costs no CRM request, and so never
// reaches the dead-letter list admins are told to act on.
func TestCallWithoutAClientNumberCreatesNothing(t *testing.T) {
	numbers := []struct {
		number string
		reason string
	}{
		{"anonymous", `the client's number "anonymous" is withheld`},
		{"Anonymous", `the client's number "Anonymous" is withheld`},
		{"unknown", `the client's number "unknown" is withheld`},
		{"restricted", `the client's number "restricted" is withheld`},
		{"PRIVATE", `the client's number "PRIVATE" is withheld`},
		{"withheld", `the client's number "withheld" is withheld`},
		{"unavailable", `the client's number "unavailable" is withheld`},
		{"", `the client's number "" is withheld`},
		{"  ", `the client's number "  " is withheld`},
		{"asterisk", `the client's number "asterisk" is not a phone number`},
		{"101", `the client's number "101" is not a phone number`},
		{"+", `the client's number "+" is not a phone number`},
	}
	calls := []struct {
		name    string
		outcome func(number string) routing.CallOutcome
	}{
		{"missed incoming", func(n string) routing.CallOutcome { o := incoming("c1", false); o.Caller = n; return o }},
		{"answered incoming", func(n string) routing.CallOutcome { o := incoming("c1", true); o.Caller = n; return o }},
		{"answered outgoing", func(n string) routing.CallOutcome { o := outgoing("c1", true); o.Called = n; return o }},
	}
	// The scenarios that create the most for a caller: Unsorted for every new one, a task
	// for every missed call, a note on every call.
	cfg := scenarios.Defaults()
	cfg.Incoming.Unknown.Mode = scenarios.ModeUnsorted
	cfg.Outgoing.Unknown.CreateContact = true
	require.Empty(t, cfg.Validate())
	for _, c := range calls {
		for _, n := range numbers {
			t.Run(c.name+"/"+n.number, func(t *testing.T) {
				e := newEnv(t, cfg)
				res := e.handle(t, c.outcome(n.number)) // no error: nothing to retry or dead-letter
				assert.Empty(t, res.Steps)
				assert.Empty(t, res.Phone)
				require.Len(t, res.Reasons, 1)
				assert.Contains(t, res.Reasons[0], n.reason)
				assert.Contains(t, res.Reasons[0], "no contact lookup, Unsorted entry, task or note")
				reads, writes := e.crm.Requests()
				assert.Zero(t, reads, "no contact lookup")
				assert.Zero(t, writes)
			})
		}
	}
}
