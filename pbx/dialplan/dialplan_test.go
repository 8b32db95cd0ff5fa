package dialplan

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
)

// The names and values the dialplan, the README and asterisk-conf/ depend on, per kind of
// decision: a change here breaks every PBX configured from them.
func TestContractPerDecision(t *testing.T) {
	fallback := func(r routing.Reason, owner crm.UserID, src routing.Source) routing.Decision {
		return routing.Decision{Result: routing.Fallback, Reason: r, Owner: owner, Source: src}
	}
	tests := []struct {
		name     string
		d        routing.Decision
		noTarget bool
		// result, reason, owner, source as sent; userfield as ARI writes it.
		result, reason, owner, source, userfield string
		problems                                 int
	}{
		{"routed from the index", routing.Decision{Result: routing.Routed, Owner: 42, Source: routing.SourceIndex}, false, "ROUTED", "", "42", "index", "crmlink:ROUTED", 0},
		{"routed from the cache", routing.Decision{Result: routing.Routed, Owner: 42, Source: routing.SourceCache}, false, "ROUTED", "", "42", "cache", "crmlink:ROUTED", 0},
		{"routed from amoCRM", routing.Decision{Result: routing.Routed, Owner: 7, Source: routing.SourceCRM}, false, "ROUTED", "", "7", "crm", "crmlink:ROUTED", 0},
		{"disabled", fallback(routing.ReasonDisabled, 0, ""), false, "FALLBACK", "disabled", "", "", "crmlink:disabled", 0},
		{"not_found", fallback(routing.ReasonNotFound, 0, routing.SourceCRM), false, "FALLBACK", "not_found", "", "crm", "crmlink:not_found", 0},
		{"no_owner", fallback(routing.ReasonNoOwner, 42, routing.SourceCRM), false, "FALLBACK", "no_owner", "42", "crm", "crmlink:no_owner", 0},
		{"owner_unavailable", fallback(routing.ReasonOwnerUnavailable, 42, routing.SourceCache), false, "FALLBACK", "owner_unavailable", "42", "cache", "crmlink:owner_unavailable", 0},
		{"owner_no_answer", fallback(routing.ReasonOwnerNoAnswer, 42, routing.SourceIndex), false, "FALLBACK", "owner_no_answer", "42", "index", "crmlink:owner_no_answer", 0},
		{"timeout", fallback(routing.ReasonTimeout, 0, ""), false, "FALLBACK", "timeout", "", "", "crmlink:timeout", 0},
		{"crm_error", fallback(routing.ReasonCRMError, 0, ""), false, "FALLBACK", "crm_error", "", "", "crmlink:crm_error", 0},
		{"interrupted", fallback(routing.ReasonInterrupted, 0, ""), false, "FALLBACK", "interrupted", "", "", "crmlink:interrupted", 0},
		{"routed, but no target the front end can use", routing.Decision{Result: routing.Routed, Owner: 42, Source: routing.SourceCRM}, true, "FALLBACK", "no_owner", "42", "crm", "crmlink:no_owner", 1},
		{"zero decision", routing.Decision{}, false, "FALLBACK", "", "", "", "crmlink:FALLBACK", 1},
		{"CRM data that is not a token", routing.Decision{Result: routing.Fallback, Reason: "timeout\nHANGUP", Source: "a b", Owner: -1}, false, "FALLBACK", "", "", "", "crmlink:FALLBACK", 3},
		{"a result that is not ours", routing.Decision{Result: "ROUTED\r\nX-Evil: 1", Owner: 42}, false, "FALLBACK", "", "42", "", "crmlink:FALLBACK", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Of(tt.d)
			if tt.noTarget {
				v.NoTarget()
			}
			v.Dial, v.RingTimeout = "PJSIP/101&PJSIP/102", "20"
			assert.Len(t, v.Problems, tt.problems, "%q", v.Problems)
			assert.Equal(t, []Var{
				{"CRMLINK_RESULT", tt.result}, {"CRMLINK_REASON", tt.reason}, {"CRMLINK_OWNER", tt.owner},
				{"CRMLINK_SOURCE", tt.source}, {"CDR(userfield)", tt.userfield},
			}, v.ChannelVars(), "ARI")
			assert.Equal(t, []Var{
				{"CRMLINK_REASON", tt.reason}, {"CRMLINK_OWNER", tt.owner}, {"CRMLINK_SOURCE", tt.source},
				{"CRMLINK_DIAL", "PJSIP/101&PJSIP/102"}, {"CRMLINK_RING_TIMEOUT", "20"}, {"CRMLINK_RESULT", tt.result},
			}, v.AGIVars(), "FastAGI: the result last")
			assert.Equal(t, []Var{
				{"X-CRMLINK-Result", tt.result}, {"X-CRMLINK-Reason", tt.reason}, {"X-CRMLINK-Owner", tt.owner},
				{"X-CRMLINK-Source", tt.source},
			}, v.Headers(), "SIP redirect")
		})
	}
}

func TestQuote(t *testing.T) {
	assert.Equal(t, `"a\nb"`, Quote("a\nb"))
	long := Quote(string(make([]byte, 100)))
	assert.Less(t, len(long), 100*4, "cut before quoting")
}
