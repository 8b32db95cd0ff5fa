package routing

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Inquiries (GET /v1/route) look up through their own directory and are paced; calls keep
// theirs and are never held back by inquiries.
func TestInquiriesArePacedAndUseTheirOwnDirectory(t *testing.T) {
	w := basicWorld()
	calls, inquiries := w.directory(), w.directory()
	r := newTestRouter(t, calls, newClock(), func(o *Options) { o.InquiryDirectory = inquiries })
	ctx := t.Context()
	ask := func(n int) Decision {
		return r.Decide(ctx, Call{Caller: fmt.Sprintf("8495300%04d", n), Inquiry: true})
	}

	for n := range inquiryBurst {
		d := ask(n)
		require.Equal(t, ReasonNotFound, d.Reason, "inquiry %d is answered by the CRM: %+v", n, d.Steps)
	}
	assert.Equal(t, int64(inquiryBurst), inquiries.calls(), "inquiries use the inquiry directory")
	assert.Zero(t, calls.calls(), "inquiries never use the call path's directory")

	d := ask(inquiryBurst)
	assert.Equal(t, ReasonTimeout, d.Reason, "past the burst the next slot is after the lookup timeout: %+v", d.Steps)
	assert.Less(t, d.Latency, r.lookup/2, "an inquiry past its budget is told at once")
	assert.Equal(t, int64(inquiryBurst), inquiries.calls(), "and costs no CRM request")

	c := r.Decide(ctx, call())
	assert.Equal(t, Routed, c.Result, "a call is not paced: %+v", c.Steps)
	assert.Positive(t, calls.calls())

	inq := r.Decide(ctx, Call{Caller: callerRaw, Inquiry: true})
	assert.Equal(t, SourceCache, inq.Source, "a number a call looked up answers inquiries from the cache")
}
