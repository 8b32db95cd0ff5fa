package routing

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
)

func TestWebhookUpdatesOwner(t *testing.T) {
	noOpenLead := func() *world {
		w := basicWorld()
		w.leads[1][0].StatusID = crm.StatusWon
		return w
	}
	companyOnly := func() *world {
		w := basicWorld()
		w.contacts[0].Responsible = 0
		w.leads[1] = nil
		return w
	}
	twoOpenLeads := func() *world {
		w := basicWorld()
		w.leads[1] = []crm.Lead{
			{ID: 100, StatusID: 1, Responsible: userLead, UpdatedAt: tBase.Add(time.Hour)},
			{ID: 101, StatusID: 1, Responsible: userCompany, UpdatedAt: tBase},
		}
		return w
	}
	noLeads := func() *world {
		w := basicWorld()
		w.leads[1] = nil
		return w
	}
	responsible := func(e crm.EntityType, id int64, who crm.UserID) crm.ResponsibleChange {
		return crm.ResponsibleChange{Entity: e, ID: id, Responsible: who, At: tBase.Add(2 * time.Hour)}
	}

	cases := []struct {
		name   string
		world  func() *world
		before crm.UserID
		// apply tells the router, and edits the world the same way so a live lookup agrees.
		apply  func(ctx context.Context, r *Router, w *world) error
		after  crm.UserID
		source Source
	}{
		{
			name: "lead responsible changed", world: basicWorld, before: userLead,
			apply: func(ctx context.Context, r *Router, w *world) error {
				w.edit(func(w *world) { w.leads[1][0].Responsible = userOther })
				return r.ApplyResponsibleChange(ctx, responsible(crm.EntityLead, 100, userOther))
			},
			after: userOther, source: SourceIndex,
		},
		{
			name: "contact responsible changed", world: noOpenLead, before: userContact,
			apply: func(ctx context.Context, r *Router, w *world) error {
				w.edit(func(w *world) { w.contacts[0].Responsible = userOther })
				return r.ApplyResponsibleChange(ctx, responsible(crm.EntityContact, 1, userOther))
			},
			after: userOther, source: SourceIndex,
		},
		{
			name: "company responsible changed", world: companyOnly, before: userCompany,
			apply: func(ctx context.Context, r *Router, w *world) error {
				w.edit(func(w *world) { w.companies[5] = crm.Company{ID: 5, Responsible: userOther} })
				return r.ApplyResponsibleChange(ctx, responsible(crm.EntityCompany, 5, userOther))
			},
			after: userOther, source: SourceIndex,
		},
		{
			name: "contact change under an open lead keeps the lead's owner", world: basicWorld, before: userLead,
			apply: func(ctx context.Context, r *Router, w *world) error {
				w.edit(func(w *world) { w.contacts[0].Responsible = userOther })
				return r.ApplyResponsibleChange(ctx, responsible(crm.EntityContact, 1, userOther))
			},
			after: userLead, source: SourceIndex,
		},
		{
			name: "older open lead changed hands and is now the latest", world: twoOpenLeads, before: userLead,
			apply: func(ctx context.Context, r *Router, w *world) error {
				w.edit(func(w *world) { w.leads[1][1].Responsible, w.leads[1][1].UpdatedAt = userOther, tBase.Add(2*time.Hour) })
				return r.ApplyResponsibleChange(ctx, responsible(crm.EntityLead, 101, userOther))
			},
			after: userOther, source: SourceIndex,
		},
		{
			name: "lead won: the contact's responsible", world: basicWorld, before: userLead,
			apply: func(ctx context.Context, r *Router, w *world) error {
				w.edit(func(w *world) { w.leads[1][0].StatusID = crm.StatusWon })
				return r.ApplyLeadStatus(ctx, 100, crm.StatusWon)
			},
			after: userContact, source: SourceIndex,
		},
		{
			name: "lead reopened", world: noOpenLead, before: userContact,
			apply: func(ctx context.Context, r *Router, w *world) error {
				w.edit(func(w *world) { w.leads[1][0].StatusID = 7 })
				return r.ApplyLeadStatus(ctx, 100, 7)
			},
			after: userLead, source: SourceIndex,
		},
		{
			name: "contact loses its responsible, company never read: live lookup", world: noLeads, before: userContact,
			apply: func(ctx context.Context, r *Router, w *world) error {
				w.edit(func(w *world) { w.contacts[0].Responsible = 0 })
				return r.ApplyResponsibleChange(ctx, responsible(crm.EntityContact, 1, 0))
			},
			after: userCompany, source: SourceCRM,
		},
		{
			name: "entity nobody cached: nothing to do, entry not refreshed", world: basicWorld, before: userLead,
			apply: func(ctx context.Context, r *Router, _ *world) error {
				return r.ApplyResponsibleChange(ctx, responsible(crm.EntityContact, 777, userOther))
			},
			after: userLead, source: SourceCRM,
		},
		{
			name: "forget phone", world: basicWorld, before: userLead,
			apply: func(ctx context.Context, r *Router, w *world) error {
				w.edit(func(w *world) { w.leads[1][0].Responsible = userOther })
				return r.ForgetPhone(ctx, callerPhone)
			},
			after: userOther, source: SourceCRM,
		},
		{
			name: "forget contact", world: basicWorld, before: userLead,
			apply: func(ctx context.Context, r *Router, w *world) error {
				w.edit(func(w *world) { w.leads[1] = nil })
				return r.ForgetEntity(ctx, crm.EntityContact, 1)
			},
			after: userContact, source: SourceCRM,
		},
		{
			name: "forget lead", world: basicWorld, before: userLead,
			apply: func(ctx context.Context, r *Router, w *world) error {
				w.edit(func(w *world) { w.leads[1][0].Responsible = userOther })
				return r.ForgetEntity(ctx, crm.EntityLead, 100)
			},
			after: userOther, source: SourceCRM,
		},
	}
	for _, kind := range cacheKinds {
		for _, c := range cases {
			t.Run(kind.name+"/"+c.name, func(t *testing.T) {
				clock := newClock()
				w := c.world()
				dir := w.directory()
				r := newTestRouter(t, dir, clock, func(o *Options) { o.Cache = kind.make(t, clock) })
				ctx := t.Context()

				d := r.Decide(ctx, call())
				require.Equal(t, Routed, d.Result, "steps: %+v", d.Steps)
				require.Equal(t, c.before, d.Owner)
				require.Equal(t, SourceCRM, d.Source)

				// Late in the entry's life, so that an applied change must refresh its TTL.
				clock.Advance(5 * time.Hour)
				require.NoError(t, c.apply(ctx, r, w))
				clock.Advance(2 * time.Hour)

				before := dir.calls()
				d = r.Decide(ctx, call())
				assert.Equal(t, Routed, d.Result, "steps: %+v", d.Steps)
				assert.Equal(t, c.after, d.Owner)
				assert.Equal(t, c.source, d.Source)
				if c.source == SourceIndex {
					assert.Equal(t, before, dir.calls(), "an indexed answer costs no CRM request")
					d = r.Decide(ctx, call())
					assert.Equal(t, SourceIndex, d.Source, "stays index on later hits")
				} else {
					assert.Greater(t, dir.calls(), before)
				}
			})
		}
	}
}

func TestWebhookSharedNumber(t *testing.T) {
	// Two numbers on one contact: a change reaches both.
	for _, kind := range cacheKinds {
		t.Run(kind.name, func(t *testing.T) {
			clock := newClock()
			w := basicWorld()
			w.contacts[0].Phones = append(w.contacts[0].Phones, "+74957654321")
			w.leads[1] = nil
			dir := w.directory()
			r := newTestRouter(t, dir, clock, func(o *Options) { o.Cache = kind.make(t, clock) })
			ctx := t.Context()
			second := Call{Caller: "84957654321"}
			require.Equal(t, userContact, r.Decide(ctx, call()).Owner)
			require.Equal(t, userContact, r.Decide(ctx, second).Owner)

			require.NoError(t, r.ApplyResponsibleChange(ctx, crm.ResponsibleChange{Entity: crm.EntityContact, ID: 1, Responsible: userOther}))
			before := dir.calls()
			for _, c := range []Call{call(), second} {
				d := r.Decide(ctx, c)
				assert.Equal(t, userOther, d.Owner)
				assert.Equal(t, SourceIndex, d.Source)
			}
			assert.Equal(t, before, dir.calls())
		})
	}
}

func TestWebhookDuringLookupIsNotOverwritten(t *testing.T) {
	started := make(chan struct{})
	proceed := make(chan struct{})
	w := basicWorld()
	w.leads[1] = nil
	dir := w.directory()
	find := dir.FindFunc
	dir.FindFunc = func(ctx context.Context, p crm.Phone) ([]crm.Contact, error) {
		contacts, err := find(ctx, p) // reads the CRM before the change...
		if dir.finds.Load() == 1 {
			close(started)
			<-proceed // ...and answers after the webhook
		}
		return contacts, err
	}
	r := newTestRouter(t, dir, newClock(), func(o *Options) { o.LookupTimeout = 5 * time.Second })
	ctx := t.Context()

	first := make(chan Decision, 1)
	go func() { first <- r.Decide(ctx, call()) }()
	<-started
	w.edit(func(w *world) { w.contacts[0].Responsible = userOther })
	require.NoError(t, r.ApplyResponsibleChange(ctx, crm.ResponsibleChange{Entity: crm.EntityContact, ID: 1, Responsible: userOther}))
	close(proceed)
	assert.Equal(t, userContact, (<-first).Owner, "the call in progress gets what the CRM said")

	d := r.Decide(ctx, call())
	assert.Equal(t, userOther, d.Owner, "the stale answer was not cached")
	assert.Equal(t, SourceCRM, d.Source)
	assert.Equal(t, int64(2), dir.finds.Load())
}

func TestWebhookRejectsBadInput(t *testing.T) {
	r := newTestRouter(t, basicWorld().directory(), newClock(), nil)
	ctx := t.Context()
	assert.Error(t, r.ApplyResponsibleChange(ctx, crm.ResponsibleChange{Entity: "deal", ID: 1}))
	assert.Error(t, r.ApplyResponsibleChange(ctx, crm.ResponsibleChange{Entity: crm.EntityLead}))
	assert.Error(t, r.ApplyLeadStatus(ctx, 0, crm.StatusWon))
	assert.Error(t, r.ForgetEntity(ctx, "task", 1))
}
