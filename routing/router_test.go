package routing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
)

func stepNames(d Decision) []string {
	names := make([]string, len(d.Steps))
	for i, s := range d.Steps {
		names[i] = s.Name
	}
	return names
}

func targets(eps ...string) []Target {
	out := make([]Target, len(eps))
	for i, e := range eps {
		out[i] = Target{Endpoint: e}
	}
	return out
}

func TestDecideDisabled(t *testing.T) {
	cases := []struct {
		name    string
		caller  string
		enabled bool
		noCRM   bool
		want    Reason
	}{
		{name: "routing off", caller: callerRaw, want: ReasonDisabled},
		{name: "no CRM configured", caller: callerRaw, enabled: true, noCRM: true, want: ReasonDisabled},
		{name: "empty caller", caller: " ", enabled: true, want: ReasonDisabled},
		{name: "anonymous", caller: "anonymous", enabled: true, want: ReasonDisabled},
		{name: "Unknown", caller: "Unknown", enabled: true, want: ReasonDisabled},
		{name: "not a number", caller: "abc", enabled: true, want: ReasonNotFound},
		{name: "internal extension", caller: "101", enabled: true, want: ReasonNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := basicWorld().directory()
			r := newTestRouter(t, dir, newClock(), func(o *Options) {
				o.Enabled = c.enabled
				if c.noCRM {
					o.Directory = nil
				}
			})
			d := r.Decide(t.Context(), Call{Caller: c.caller})
			assert.Equal(t, Fallback, d.Result)
			assert.Equal(t, c.want, d.Reason)
			assert.Empty(t, d.Targets)
			assert.NotEmpty(t, d.Steps, "the reason is explained in a step")
			assert.Zero(t, dir.calls(), "no CRM request")
		})
	}
}

func TestDecidePrecedence(t *testing.T) {
	open := func(id int64, who crm.UserID, updated time.Duration) crm.Lead {
		return crm.Lead{ID: id, StatusID: 1, Responsible: who, UpdatedAt: tBase.Add(updated)}
	}
	closed := func(id int64, status int64, who crm.UserID, updated time.Duration) crm.Lead {
		return crm.Lead{ID: id, StatusID: status, Responsible: who, UpdatedAt: tBase.Add(updated)}
	}
	cases := []struct {
		name       string
		precedence []crm.EntityType
		contact    crm.UserID
		company    crm.UserID // 0: contact has no company
		leads      []crm.Lead
		want       crm.UserID
		reason     Reason
		// CRM requests the lookup may spend besides the search: only the links the precedence
		// reaches, and no leads request for a contact without leads.
		wantLeadCalls, wantCompanyCalls int64
	}{
		// Default precedence lead, contact, company: the search and the leads, nothing more.
		{name: "open lead first", contact: userContact, company: userCompany, leads: []crm.Lead{open(100, userLead, 0)},
			want: userLead, wantLeadCalls: 1},
		{name: "closed leads ignored", contact: userContact, company: userCompany,
			leads: []crm.Lead{closed(100, crm.StatusWon, userLead, time.Hour), closed(101, crm.StatusLost, userOther, 2*time.Hour)},
			want:  userContact, wantLeadCalls: 1},
		{name: "most recently updated open lead", contact: userContact,
			leads: []crm.Lead{open(100, userLead, time.Hour), open(101, userOther, 2*time.Hour), closed(102, crm.StatusWon, userCompany, 3*time.Hour)},
			want:  userOther, wantLeadCalls: 1},
		{name: "open lead without responsible skipped", contact: userContact,
			leads: []crm.Lead{open(100, userLead, time.Hour), open(101, 0, 2*time.Hour)},
			want:  userLead, wantLeadCalls: 1},
		// The search said the contact has no leads: the search alone answers.
		{name: "no leads: contact", contact: userContact, company: userCompany, want: userContact},
		{name: "no contact responsible: company", company: userCompany, want: userCompany, wantCompanyCalls: 1},
		{name: "custom contact first", precedence: []crm.EntityType{crm.EntityContact, crm.EntityLead, crm.EntityCompany},
			contact: userContact, company: userCompany, leads: []crm.Lead{open(100, userLead, 0)}, want: userContact},
		{name: "custom company first", precedence: []crm.EntityType{crm.EntityCompany, crm.EntityLead, crm.EntityContact},
			contact: userContact, company: userCompany, leads: []crm.Lead{open(100, userLead, 0)}, want: userCompany, wantCompanyCalls: 1},
		{name: "custom without contact", precedence: []crm.EntityType{crm.EntityLead, crm.EntityCompany},
			contact: userContact, company: userCompany, leads: []crm.Lead{closed(100, crm.StatusWon, userLead, 0)},
			want: userCompany, wantLeadCalls: 1, wantCompanyCalls: 1},
		{name: "contact only, nobody", precedence: []crm.EntityType{crm.EntityContact},
			company: userCompany, leads: []crm.Lead{open(100, userLead, 0)}, reason: ReasonNoOwner},
		{name: "nobody anywhere", leads: []crm.Lead{closed(100, crm.StatusLost, userLead, 0)}, reason: ReasonNoOwner, wantLeadCalls: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld()
			ct := crm.Contact{ID: 1, Responsible: c.contact, Phones: []string{"89161234567"}}
			if c.company != 0 {
				ct.CompanyID = 5
				w.companies[5] = crm.Company{ID: 5, Responsible: c.company}
			}
			w.contacts = []crm.Contact{ct}
			w.leads[1] = c.leads
			dir := w.directory()
			var asked [][]int64
			leads := dir.LeadsFunc
			dir.LeadsFunc = func(ctx context.Context, ids []int64) ([]crm.Lead, error) {
				asked = append(asked, ids)
				return leads(ctx, ids)
			}
			r := newTestRouter(t, dir, newClock(), func(o *Options) { o.Precedence = c.precedence })

			d := r.Decide(t.Context(), call())
			assert.Equal(t, callerPhone, d.Phone)
			assert.Equal(t, SourceCRM, d.Source)
			if c.reason != ReasonNone {
				assert.Equal(t, Fallback, d.Result)
				assert.Equal(t, c.reason, d.Reason)
				assert.Zero(t, d.Owner)
			} else {
				assert.Equal(t, Routed, d.Result, "steps: %+v", d.Steps)
				assert.Equal(t, c.want, d.Owner)
			}
			assert.Equal(t, int64(1), dir.finds.Load())
			assert.Equal(t, c.wantLeadCalls, dir.leads.Load(), "lead requests")
			assert.Equal(t, c.wantCompanyCalls, dir.companies.Load(), "company requests")
			assert.Equal(t, 1+c.wantLeadCalls+c.wantCompanyCalls, dir.calls(), "CRM requests in all; the contact is not read again")
			var ids []int64
			for _, l := range c.leads {
				ids = append(ids, l.ID)
			}
			for _, got := range asked {
				assert.Equal(t, ids, got, "the leads are read by the ids the search returned")
			}
		})
	}
}

func TestDecideChoosesContact(t *testing.T) {
	phones := []string{"+79161234567"}
	cases := []struct {
		name     string
		contacts []crm.Contact
		leads    map[int64][]crm.Lead // by contact id
		want     crm.UserID
		reason   Reason

		wantLeadCalls int64
	}{
		{
			name: "the one with an open lead beats a newer one",
			contacts: []crm.Contact{
				{ID: 1, Responsible: userContact, Phones: phones, UpdatedAt: tBase.Add(2 * time.Hour)},
				{ID: 2, Responsible: userOther, Phones: phones, UpdatedAt: tBase},
			},
			leads: map[int64][]crm.Lead{
				1: {{ID: 100, StatusID: crm.StatusWon, Responsible: userLead}},
				2: {{ID: 200, StatusID: 7, Responsible: userCompany}},
			},
			want:          userCompany,
			wantLeadCalls: 1,
		},
		{
			// The open lead has no responsible, so the owner tells which contact was chosen:
			// the newer one of the two that share the lead.
			name: "a lead linked to two contacts counts for each",
			contacts: []crm.Contact{
				{ID: 1, Responsible: userContact, Phones: phones, UpdatedAt: tBase.Add(2 * time.Hour)},
				{ID: 2, Responsible: userOther, Phones: phones, UpdatedAt: tBase},
				{ID: 3, Responsible: userCompany, Phones: phones, UpdatedAt: tBase.Add(time.Hour)},
			},
			leads: map[int64][]crm.Lead{
				2: {{ID: 200, StatusID: crm.StatusLost, Responsible: userLead}, {ID: 201, StatusID: 7}},
				3: {{ID: 201, StatusID: 7}},
			},
			want:          userCompany,
			wantLeadCalls: 1,
		},
		{
			name: "no open lead anywhere: most recently updated",
			contacts: []crm.Contact{
				{ID: 1, Responsible: userContact, Phones: phones, UpdatedAt: tBase},
				{ID: 2, Responsible: userOther, Phones: phones, UpdatedAt: tBase.Add(time.Hour)},
			},
			want: userOther,
		},
		{
			name: "a search hit without the number on the card is not the caller",
			contacts: []crm.Contact{
				{ID: 1, Responsible: userContact, Phones: []string{"+74951234567"}, UpdatedAt: tBase.Add(time.Hour)},
				{ID: 2, Responsible: userOther, Phones: []string{"+7 (916) 123-45-67"}, UpdatedAt: tBase},
			},
			want: userOther,
		},
		{
			name:     "only unverified hits: not found",
			contacts: []crm.Contact{{ID: 1, Responsible: userContact, Phones: []string{"+74951234567"}}},
			reason:   ReasonNotFound,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld()
			w.contacts = c.contacts
			for id, leads := range c.leads {
				w.leads[id] = leads
			}
			dir := w.directory()
			r := newTestRouter(t, dir, newClock(), nil)
			d := r.Decide(t.Context(), call())
			if c.reason != ReasonNone {
				assert.Equal(t, c.reason, d.Reason)
				return
			}
			assert.Equal(t, Routed, d.Result, "steps: %+v", d.Steps)
			assert.Equal(t, c.want, d.Owner)
			assert.Equal(t, c.wantLeadCalls, dir.leads.Load(), "the candidates' leads are read in one request, if any")
		})
	}
}

func TestDecideNotFoundNegativeTTL(t *testing.T) {
	for _, kind := range cacheKinds {
		t.Run(kind.name, func(t *testing.T) {
			clock := newClock()
			dir := newWorld().directory()
			r := newTestRouter(t, dir, clock, func(o *Options) {
				o.Cache = kind.make(t, clock)
				o.NegativeTTL = 5 * time.Minute
			})

			d := r.Decide(t.Context(), call())
			assert.Equal(t, ReasonNotFound, d.Reason)
			assert.Equal(t, SourceCRM, d.Source)
			assert.Equal(t, int64(1), dir.finds.Load())

			clock.Advance(5*time.Minute - time.Second)
			d = r.Decide(t.Context(), call())
			assert.Equal(t, ReasonNotFound, d.Reason)
			assert.Equal(t, SourceCache, d.Source)
			assert.Equal(t, int64(1), dir.finds.Load(), "within the negative TTL the CRM is not asked")

			clock.Advance(time.Second)
			d = r.Decide(t.Context(), call())
			assert.Equal(t, ReasonNotFound, d.Reason)
			assert.Equal(t, SourceCRM, d.Source)
			assert.Equal(t, int64(2), dir.finds.Load(), "after the negative TTL the CRM is asked again")
		})
	}
}

func TestDecideNoOwner(t *testing.T) {
	cases := []struct {
		name      string
		resp      crm.UserID
		wantOwner crm.UserID
	}{
		{"no responsible anywhere", 0, 0},
		{"responsible without a managers entry", userUnknown, userUnknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld()
			w.contacts = []crm.Contact{{ID: 1, Responsible: c.resp, Phones: []string{callerRaw}}}
			r := newTestRouter(t, w.directory(), newClock(), nil)
			d := r.Decide(t.Context(), call())
			assert.Equal(t, Fallback, d.Result)
			assert.Equal(t, ReasonNoOwner, d.Reason)
			assert.Equal(t, c.wantOwner, d.Owner)
			assert.Equal(t, SourceCRM, d.Source)
			assert.Empty(t, d.Targets)
		})
	}
}

func TestDecideCRMError(t *testing.T) {
	errs := []error{crm.ErrUnauthorized, crm.ErrForbidden, crm.ErrRateLimited, crm.ErrUnavailable, errors.New("unexpected JSON")}
	stages := []string{"find", "leads", "company"}
	for _, e := range errs {
		for _, stage := range stages {
			t.Run(fmt.Sprintf("%s/%v", stage, e), func(t *testing.T) {
				wrapped := fmt.Errorf("amocrm: GET /api/v4/...: %w", e)
				w := basicWorld()
				// Leads to read but none open, and no contact responsible: every stage is reached.
				w.contacts[0].Responsible = 0
				w.leads[1][0].StatusID = crm.StatusWon
				dir := w.directory()
				switch stage {
				case "find":
					dir.FindFunc = func(context.Context, crm.Phone) ([]crm.Contact, error) { return nil, wrapped }
				case "leads":
					dir.LeadsFunc = func(context.Context, []int64) ([]crm.Lead, error) { return nil, wrapped }
				case "company":
					dir.CompanyFunc = func(context.Context, int64) (crm.Company, error) { return crm.Company{}, wrapped }
				}
				r := newTestRouter(t, dir, newClock(), nil)
				d := r.Decide(t.Context(), call())
				assert.Equal(t, Fallback, d.Result)
				assert.Equal(t, ReasonCRMError, d.Reason)

				// Errors are not cached: the next call asks again.
				before := dir.finds.Load()
				r.Decide(t.Context(), call())
				assert.Equal(t, before+1, dir.finds.Load())
			})
		}
	}
}

func TestDecideTimeout(t *testing.T) {
	const lookup = 100 * time.Millisecond
	const slack = 20 * time.Millisecond
	cases := []struct {
		name string
		// setup returns the directory and optionally a cache; release unblocks everything.
		setup  func(release chan struct{}) (*fakeDirectory, OwnerCache)
		ctx    func(t *testing.T) context.Context
		budget time.Duration
	}{
		{
			name: "directory ignores its context and blocks forever",
			setup: func(release chan struct{}) (*fakeDirectory, OwnerCache) {
				return &fakeDirectory{FindFunc: func(context.Context, crm.Phone) ([]crm.Contact, error) {
					<-release
					return nil, nil
				}}, nil
			},
			budget: lookup,
		},
		{
			name: "directory honours its context",
			setup: func(chan struct{}) (*fakeDirectory, OwnerCache) {
				return &fakeDirectory{FindFunc: func(ctx context.Context, _ crm.Phone) ([]crm.Contact, error) {
					<-ctx.Done()
					return nil, fmt.Errorf("amocrm: %w", ctx.Err())
				}}, nil
			},
			budget: lookup,
		},
		{
			name: "slow second request uses up the budget",
			setup: func(release chan struct{}) (*fakeDirectory, OwnerCache) {
				dir := basicWorld().directory()
				dir.LeadsFunc = func(context.Context, []int64) ([]crm.Lead, error) {
					<-release
					return nil, nil
				}
				return dir, nil
			},
			budget: lookup,
		},
		{
			name: "the caller's own deadline is shorter",
			setup: func(release chan struct{}) (*fakeDirectory, OwnerCache) {
				return &fakeDirectory{FindFunc: func(context.Context, crm.Phone) ([]crm.Contact, error) {
					<-release
					return nil, nil
				}}, nil
			},
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			budget: 30 * time.Millisecond,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			dir, cache := c.setup(release)
			r := newTestRouter(t, dir, newClock(), func(o *Options) {
				o.LookupTimeout = lookup
				o.Cache = cache
			})
			ctx := t.Context()
			if c.ctx != nil {
				ctx = c.ctx(t)
			}
			start := time.Now()
			d := r.Decide(ctx, call())
			elapsed := time.Since(start)
			assert.Equal(t, Fallback, d.Result)
			assert.Equal(t, ReasonTimeout, d.Reason, "steps: %+v", d.Steps)
			assert.Less(t, elapsed, c.budget+slack, "Decide waited past its deadline")
			assert.GreaterOrEqual(t, elapsed, c.budget-5*time.Millisecond)
			assert.InDelta(t, float64(elapsed), float64(d.Latency), float64(slack))
		})
	}
}

func TestDecideCachedSecondCall(t *testing.T) {
	for _, kind := range cacheKinds {
		t.Run(kind.name, func(t *testing.T) {
			clock := newClock()
			dir := basicWorld().directory()
			r := newTestRouter(t, dir, clock, func(o *Options) { o.Cache = kind.make(t, clock) })

			d := r.Decide(t.Context(), call())
			require.Equal(t, Routed, d.Result, "steps: %+v", d.Steps)
			assert.Equal(t, SourceCRM, d.Source)
			assert.Equal(t, userLead, d.Owner)
			assert.Equal(t, targets("PJSIP/110", "PJSIP/79160000010@trunk"), d.Targets)
			before := dir.calls()

			clock.Advance(6*time.Hour - time.Second)
			d = r.Decide(t.Context(), Call{Caller: "+7 916 1234567"}) // same number, other spelling
			assert.Equal(t, Routed, d.Result)
			assert.Equal(t, SourceCache, d.Source)
			assert.Equal(t, userLead, d.Owner)
			assert.Equal(t, targets("PJSIP/110", "PJSIP/79160000010@trunk"), d.Targets)
			assert.Equal(t, before, dir.calls(), "a cached answer costs no CRM request")
			assert.Equal(t, []string{"caller", "cache", "owner"}, stepNames(d))

			clock.Advance(time.Second)
			d = r.Decide(t.Context(), call())
			assert.Equal(t, SourceCRM, d.Source, "after the cache TTL the CRM is asked again")
		})
	}
}

// countingCache counts Get calls and runs onGet after each.
type countingCache struct {
	OwnerCache
	gets  atomic.Int64
	onGet func(n int64)
}

func (c *countingCache) Get(ctx context.Context, p crm.Phone) (Entry, bool, error) {
	e, ok, err := c.OwnerCache.Get(ctx, p)
	c.onGet(c.gets.Add(1))
	return e, ok, err
}

func TestDecideConcurrentCallsShareOneLookup(t *testing.T) {
	const callers = 50
	release := make(chan struct{})
	var once sync.Once
	w := basicWorld()
	dir := w.directory()
	find := dir.FindFunc
	dir.FindFunc = func(ctx context.Context, p crm.Phone) ([]crm.Contact, error) {
		<-release // held until every caller has missed the cache
		return find(ctx, p)
	}
	clock := newClock()
	cache := &countingCache{OwnerCache: NewMemoryCache(0, clock.Now), onGet: func(n int64) {
		if n >= callers {
			once.Do(func() { close(release) })
		}
	}}
	r := newTestRouter(t, dir, clock, func(o *Options) {
		o.Cache = cache
		o.LookupTimeout = 5 * time.Second
	})

	var wg sync.WaitGroup
	decisions := make([]Decision, callers)
	for i := range callers {
		wg.Go(func() { decisions[i] = r.Decide(t.Context(), call()) })
	}
	wg.Wait()
	assert.Equal(t, int64(1), dir.finds.Load(), "one CRM search for one number")
	assert.Equal(t, int64(1), dir.leads.Load())
	for _, d := range decisions {
		assert.Equal(t, Routed, d.Result)
		assert.Equal(t, userLead, d.Owner)
	}
}

func TestDecideSharedLookupOutlivesCaller(t *testing.T) {
	started := make(chan struct{})
	proceed := make(chan struct{})
	dir := basicWorld().directory()
	find := dir.FindFunc
	dir.FindFunc = func(ctx context.Context, p crm.Phone) ([]crm.Contact, error) {
		close(started)
		select {
		case <-proceed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return find(ctx, p)
	}
	r := newTestRouter(t, dir, newClock(), func(o *Options) { o.LookupTimeout = 5 * time.Second })

	// The first caller hangs up while the CRM is still answering.
	ctx, hangUp := context.WithCancel(t.Context())
	first := make(chan Decision, 1)
	go func() { first <- r.Decide(ctx, call()) }()
	<-started
	hangUp()
	d := <-first
	assert.Equal(t, ReasonTimeout, d.Reason)

	// The lookup goes on and fills the cache for the next call.
	close(proceed)
	d = r.Decide(t.Context(), call())
	assert.Equal(t, Routed, d.Result)
	assert.Equal(t, userLead, d.Owner)
	d = r.Decide(t.Context(), call())
	assert.Equal(t, SourceCache, d.Source)
	assert.Equal(t, int64(1), dir.finds.Load())
}

func TestDecideRecordsSteps(t *testing.T) {
	var seen []Decision
	r := newTestRouter(t, basicWorld().directory(), newClock(), func(o *Options) {
		o.OnDecision = func(_ Call, d Decision) { seen = append(seen, d) }
	})
	d := r.Decide(t.Context(), call())
	require.Equal(t, Routed, d.Result)
	assert.Equal(t, []string{"caller", "cache", "crm.find_contacts", "crm.leads", "crm", "owner"}, stepNames(d))
	for _, s := range d.Steps {
		assert.GreaterOrEqual(t, s.Duration, time.Duration(0))
		assert.LessOrEqual(t, s.Duration, d.Latency, "step %s", s.Name)
	}
	assert.Positive(t, d.Latency)
	require.Len(t, seen, 1)
	assert.Equal(t, d.Owner, seen[0].Owner)
}

func TestNewRejects(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"unknown precedence", func(o *Options) { o.Precedence = []crm.EntityType{"deal"} }, `precedence[0] is "deal"`},
		{"repeated precedence", func(o *Options) { o.Precedence = []crm.EntityType{"lead", "lead"} }, `precedence[1] repeats "lead"`},
		{"negative timeout", func(o *Options) { o.LookupTimeout = -time.Second }, "lookup timeout is -1s"},
		{"manager without id", func(o *Options) { o.Managers = []Manager{{Endpoints: []string{"PJSIP/1"}}} }, "managers[0].crm_user is 0"},
		{"manager twice", func(o *Options) {
			o.Managers = append(o.Managers, Manager{CRMUser: int64(userLead), Endpoints: []string{"PJSIP/1"}})
		}, "managers[4].crm_user 10 is mapped twice"},
		{"manager without endpoints", func(o *Options) { o.Managers = []Manager{{CRMUser: 1}} }, "managers[0].endpoints is empty"},
		{"bad schedule", func(o *Options) {
			o.Managers = []Manager{{CRMUser: 1, Endpoints: []string{"PJSIP/1"}, Schedule: ScheduleSpec{Hours: "9-18"}}}
		}, `managers[0].schedule.hours "9-18"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := Options{Managers: testManagers()}
			c.edit(&opts)
			_, err := New(opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestCachedChainFollowsThisRoutersPrecedence(t *testing.T) {
	// Instances sharing a cache (or a restart with a new precedence) read each other's
	// entries: the owner is recomputed, and a chain missing a needed link is looked up again.
	clock := newClock()
	cache := NewMemoryCache(0, clock.Now)
	w := basicWorld()
	dir := w.directory()
	first := newTestRouter(t, dir, clock, func(o *Options) { o.Cache = cache })
	require.Equal(t, userLead, first.Decide(t.Context(), call()).Owner)
	require.Zero(t, dir.companies.Load(), "the company was not needed")

	calls := dir.calls()
	contactFirst := newTestRouter(t, dir, clock, func(o *Options) {
		o.Cache = cache
		o.Precedence = []crm.EntityType{crm.EntityContact, crm.EntityLead}
	})
	d := contactFirst.Decide(t.Context(), call())
	assert.Equal(t, userContact, d.Owner)
	assert.Equal(t, SourceCache, d.Source)
	assert.Equal(t, calls, dir.calls())

	companyFirst := newTestRouter(t, dir, clock, func(o *Options) {
		o.Cache = cache
		o.Precedence = []crm.EntityType{crm.EntityCompany, crm.EntityLead}
	})
	d = companyFirst.Decide(t.Context(), call())
	assert.Equal(t, userCompany, d.Owner)
	assert.Equal(t, SourceCRM, d.Source)
	assert.Equal(t, int64(1), dir.companies.Load())
}
