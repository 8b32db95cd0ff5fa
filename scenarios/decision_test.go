package scenarios_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/scenarios"
)

// routedEnv is a sandbox env whose engine takes clients from a Router on the same amoCRM
// client, as crmlink serve wires them.
func routedEnv(t *testing.T) (*sbEnv, *routing.Router) {
	t.Helper()
	e := newSandboxEnv(t, sbConfig(nil), fastRate)
	r, err := routing.New(routing.Options{
		Directory: e.client, Enabled: true, Region: "RU",
		Managers: []routing.Manager{{CRMUser: int64(contactOwner), Endpoints: []string{"PJSIP/101"}}},
	})
	require.NoError(t, err)
	e.eng, err = scenarios.New(sbConfig(nil), e.client, e.client, e.state, scenarios.WithClients(r),
		scenarios.WithRegion("RU"), scenarios.WithLocation(time.UTC), scenarios.WithClock(e.clock.Now))
	require.NoError(t, err)
	return e, r
}

// routed decides the call the way a PBX front end does and returns its outcome as the
// event queue hands it over (through JSON).
func routed(t *testing.T, r *routing.Router, o routing.CallOutcome) routing.CallOutcome {
	t.Helper()
	o.Decision = r.Decide(t.Context(), routing.Call{Caller: o.Caller, LinkedID: o.ID})
	b, err := json.Marshal(o)
	require.NoError(t, err)
	var back routing.CallOutcome
	require.NoError(t, json.Unmarshal(b, &back))
	return back
}

// A routed, answered call from a known client costs one request after it ends: its note,
// on the open deal routing found. A webhook about the client since the decision, or a deal
// gone meanwhile, costs a fresh lookup, never the note.
func TestRoutedCallUsesItsDecision(t *testing.T) {
	t.Parallel()
	annaNote := func(o routing.CallOutcome) sandbox.Created {
		return sandbox.Created{Notes: []sandbox.Note{answeredNote(sb1, o, sbAnna, sbLeads, sbAnnaOpenDeal)}}
	}
	tests := []struct {
		name string
		// between runs after the decision, before the outcome is handled.
		between  func(t *testing.T, r *routing.Router, o *routing.CallOutcome)
		requests map[string]int
	}{
		{
			name:     "fresh decision: no read",
			requests: map[string]int{"POST /api/v4/leads/notes": 1},
		},
		{
			name: "a webhook about the contact since: one lookup",
			between: func(t *testing.T, r *routing.Router, _ *routing.CallOutcome) {
				require.NoError(t, r.ApplyResponsibleChange(t.Context(),
					crm.ResponsibleChange{Entity: crm.EntityContact, ID: sbAnnaID, Responsible: contactOwner}))
			},
			requests: map[string]int{"GET /api/v4/contacts": 1, "GET /api/v4/leads": 1, "POST /api/v4/leads/notes": 1},
		},
		{
			name: "the decision's deal is gone: the refused note is planned again from a lookup",
			between: func(_ *testing.T, _ *routing.Router, o *routing.CallOutcome) {
				o.Decision.Client.DealID = 999999
			},
			requests: map[string]int{"POST /api/v4/leads/notes": 2, "GET /api/v4/contacts": 1, "GET /api/v4/leads": 1,
				"GET /api/v4/leads/601/notes": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, r := routedEnv(t)
			o := routed(t, r, sbIncoming("d1", sbAnnaDialled, true))
			require.Equal(t, routing.Routed, o.Decision.Result)
			require.NotNil(t, o.Decision.Client)
			assert.Equal(t, routing.Client{Known: true, ContactID: sbAnnaID, ContactResponsible: contactOwner, ContactName: "Anna Petrova", DealsKnown: true,
				DealID: sbAnnaOpenDeal, Owner: contactOwner, OwnerFrom: crm.EntityLead, At: o.Decision.Client.At,
				ReadAt: o.Decision.Client.ReadAt}, *o.Decision.Client)
			assert.False(t, o.Decision.Client.ReadAt.After(o.Decision.Client.At), "read before stored")
			if tt.between != nil {
				tt.between(t, r, &o)
			}
			e.srv.ResetCounters()
			res := e.handle(t, o)
			assert.True(t, res.Known)
			assert.Equal(t, sbWant(annaNote(o)), e.created(t))
			assert.Equal(t, tt.requests, e.srv.RequestCounts())
		})
	}
}

// An unknown caller's fallback decision carries "no contact" too: the new contact, deal
// and note cost no search.
func TestRoutedUnknownCallerNeedsNoSearch(t *testing.T) {
	t.Parallel()
	e, r := routedEnv(t)
	o := routed(t, r, sbIncoming("u1", sbNewDialled, true))
	require.Equal(t, routing.ReasonNotFound, o.Decision.Reason)
	e.srv.ResetCounters()
	res := e.handle(t, o)
	assert.False(t, res.Known)
	assert.Equal(t, map[string]int{"POST /api/v4/contacts": 1, "POST /api/v4/leads": 1, "POST /api/v4/leads/notes": 1},
		e.srv.RequestCounts())
}

// Two calls from a new number, both routed before the first one's outcome is handled: the
// first creates the contact, and the second's "no contact" no longer holds.
func TestDecisionBeforeANewContactDoesNotHold(t *testing.T) {
	t.Parallel()
	e, r := routedEnv(t)
	first := routed(t, r, sbIncoming("n1", sbNewDialled, true))
	second := routed(t, r, sbIncoming("n2", sbNewDialled, true))
	require.Equal(t, routing.SourceCache, second.Decision.Source, "the second call was routed on the first one's lookup")
	assert.False(t, e.handle(t, first).Known)
	assert.True(t, e.handle(t, second).Known, "the contact the first call created")
	c := e.created(t)
	assert.Len(t, c.Contacts, 1, "one contact for the number")
	assert.Len(t, c.Leads, 1, "one deal")
	assert.Len(t, c.Notes, 2)
}

// A known client without an open deal calls twice: the first call's outcome creates the
// deal, then a webhook about the contact corrects the routing cache (which still does not
// list that deal) before the second call is routed. The second outcome finds the deal, it
// does not create another.
func TestDealCreatedBeforeAWebhookIsNotCreatedAgain(t *testing.T) {
	t.Parallel()
	e, r := routedEnv(t)
	first := routed(t, r, sbIncoming("b1", sbBorisDialled, true))
	require.NotNil(t, first.Decision.Client)
	require.Zero(t, first.Decision.Client.DealID, "Boris has only closed deals")
	e.handle(t, first)
	require.NoError(t, r.ApplyResponsibleChange(t.Context(),
		crm.ResponsibleChange{Entity: crm.EntityContact, ID: sbBorisID, Responsible: sbOtherOwner}))
	second := routed(t, r, sbIncoming("b2", sbBorisDialled, true))
	require.Equal(t, routing.SourceIndex, second.Decision.Source, "routed on the corrected cache entry")
	e.handle(t, second)
	c := e.created(t)
	assert.Len(t, c.Leads, 1, "one new deal for Boris")
	require.Len(t, c.Notes, 2)
	assert.Equal(t, c.Leads[0].ID, c.Notes[1].EntityID, "the second call's note on the deal the first one created")
}
