package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
)

// A decision answered from the cache or the webhook index carries the same contact and
// deal as the live lookup that filled it, and ResolveClient takes it as it is until a
// webhook touches the client; then it reads the CRM (deals included).
func TestCachedDecisionCarriesTheClient(t *testing.T) {
	for _, kind := range cacheKinds {
		t.Run(kind.name, func(t *testing.T) {
			clock := newClock()
			dir := basicWorld().directory()
			r := newTestRouter(t, dir, clock, func(o *Options) { o.Cache = kind.make(t, clock) })
			live := r.Decide(t.Context(), call())
			require.Equal(t, SourceCRM, live.Source)
			require.NotNil(t, live.Client)
			assert.Equal(t, Client{Known: true, ContactID: 1, ContactResponsible: userContact, DealsKnown: true, DealID: 100,
				Owner: userLead, OwnerFrom: crm.EntityLead, At: live.Client.At, ReadAt: live.Client.ReadAt}, *live.Client)

			cached := r.Decide(t.Context(), call())
			require.Equal(t, SourceCache, cached.Source)
			require.NotNil(t, cached.Client)
			assert.True(t, live.Client.At.Equal(cached.Client.At))
			cached.Client.At, cached.Client.ReadAt = live.Client.At, live.Client.ReadAt
			assert.Equal(t, *live.Client, *cached.Client, "the cache keeps the ids")

			before := dir.calls()
			c, fromDecision, err := r.ResolveClient(t.Context(), live.Phone, cached.Client)
			require.NoError(t, err)
			assert.True(t, fromDecision)
			assert.Equal(t, *cached.Client, c)
			assert.Equal(t, before, dir.calls(), "no CRM request while it holds")

			require.NoError(t, r.ApplyResponsibleChange(t.Context(), crm.ResponsibleChange{Entity: crm.EntityContact, ID: 1, Responsible: userOther}))
			indexed := r.Decide(t.Context(), call())
			require.Equal(t, SourceIndex, indexed.Source)
			assert.Equal(t, int64(100), indexed.Client.DealID, "the index keeps the ids")
			assert.Equal(t, userOther, indexed.Client.ContactResponsible)
			_, fromDecision, err = r.ResolveClient(t.Context(), live.Phone, cached.Client)
			require.NoError(t, err)
			assert.False(t, fromDecision, "a webhook since the decision")
			assert.Greater(t, dir.calls(), before, "asked the CRM")
		})
	}
}

// The call scenarios' lookups never take the call path's directory (amoCRM: the requests
// kept for ringing calls).
func TestResolveClientLooksUpOffTheCallPath(t *testing.T) {
	w := basicWorld()
	callPath, background := w.directory(), w.directory()
	r := newTestRouter(t, callPath, newClock(), func(o *Options) { o.InquiryDirectory = background })
	c, fromDecision, err := r.ResolveClient(t.Context(), "+79161234567", nil)
	require.NoError(t, err)
	assert.False(t, fromDecision)
	assert.Equal(t, int64(100), c.DealID)
	assert.Zero(t, callPath.calls(), "the call path's directory")
	assert.Positive(t, background.calls())
}
