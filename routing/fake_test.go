package routing

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/testrig"
)

func TestMain(m *testing.M) { testrig.Main(m) }

// fakeDirectory is a crm.Directory made of func fields; a nil func answers empty. It counts
// calls so tests can assert how many CRM requests a decision cost.
type fakeDirectory struct {
	FindFunc    func(ctx context.Context, phone crm.Phone) ([]crm.Contact, error)
	LeadsFunc   func(ctx context.Context, ids []int64) ([]crm.Lead, error)
	ContactFunc func(ctx context.Context, id int64) (crm.Contact, error)
	CompanyFunc func(ctx context.Context, id int64) (crm.Company, error)
	UsersFunc   func(ctx context.Context) ([]crm.User, error)

	finds, leads, companies, contacts, users atomic.Int64
}

func (f *fakeDirectory) FindContactsByPhone(ctx context.Context, phone crm.Phone) ([]crm.Contact, error) {
	f.finds.Add(1)
	if f.FindFunc == nil {
		return nil, nil
	}
	return f.FindFunc(ctx, phone)
}

func (f *fakeDirectory) Leads(ctx context.Context, ids []int64) ([]crm.Lead, error) {
	f.leads.Add(1)
	if f.LeadsFunc == nil {
		return nil, nil
	}
	return f.LeadsFunc(ctx, ids)
}

func (f *fakeDirectory) Contact(ctx context.Context, id int64) (crm.Contact, error) {
	f.contacts.Add(1)
	if f.ContactFunc == nil {
		return crm.Contact{}, crm.ErrNotFound
	}
	return f.ContactFunc(ctx, id)
}

func (f *fakeDirectory) Company(ctx context.Context, id int64) (crm.Company, error) {
	f.companies.Add(1)
	if f.CompanyFunc == nil {
		return crm.Company{}, crm.ErrNotFound
	}
	return f.CompanyFunc(ctx, id)
}

func (f *fakeDirectory) Users(ctx context.Context) ([]crm.User, error) {
	f.users.Add(1)
	if f.UsersFunc == nil {
		return nil, nil
	}
	return f.UsersFunc(ctx)
}

// calls is the total number of CRM requests made.
func (f *fakeDirectory) calls() int64 {
	return f.finds.Load() + f.leads.Load() + f.companies.Load() + f.contacts.Load() + f.users.Load()
}

var _ crm.Directory = (*fakeDirectory)(nil)

// world is a small CRM account behind a fakeDirectory; tests edit it between calls.
type world struct {
	mu       sync.Mutex
	contacts []crm.Contact
	// leads by contact id; the search returns their ids as the contacts' LeadIDs, the way
	// amoCRM does with=leads.
	leads     map[int64][]crm.Lead
	companies map[int64]crm.Company
}

func newWorld() *world {
	return &world{leads: map[int64][]crm.Lead{}, companies: map[int64]crm.Company{}}
}

func (w *world) edit(f func(w *world)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(w)
}

// directory answers from the world the way a CRM does: contacts whose card has the number.
func (w *world) directory() *fakeDirectory {
	return &fakeDirectory{
		FindFunc: func(_ context.Context, phone crm.Phone) ([]crm.Contact, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			var out []crm.Contact
			for _, c := range w.contacts {
				if slices.ContainsFunc(c.Phones, func(p string) bool { return phone.SameNumber(p, "RU") }) {
					c.LeadIDs = nil
					for _, l := range w.leads[c.ID] {
						c.LeadIDs = append(c.LeadIDs, l.ID)
					}
					out = append(out, c)
				}
			}
			return out, nil
		},
		LeadsFunc: func(_ context.Context, ids []int64) ([]crm.Lead, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			var out []crm.Lead
			for _, id := range ids {
				for _, leads := range w.leads {
					if i := slices.IndexFunc(leads, func(l crm.Lead) bool { return l.ID == id }); i >= 0 {
						out = append(out, leads[i])
						break
					}
				}
			}
			return out, nil
		},
		CompanyFunc: func(_ context.Context, id int64) (crm.Company, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			c, ok := w.companies[id]
			if !ok {
				return crm.Company{}, crm.ErrNotFound
			}
			return c, nil
		},
	}
}

// testClock is the injected Now; tests move it instead of sleeping.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)} // a Monday
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Test data shared by the tests: one caller and four mapped managers.
const (
	callerRaw              = "8 (916) 123-45-67"
	callerPhone crm.Phone  = "+79161234567"
	userLead    crm.UserID = 10
	userContact crm.UserID = 20
	userCompany crm.UserID = 30
	userOther   crm.UserID = 40
	userUnknown crm.UserID = 99
)

var tBase = time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)

func testManagers() []Manager {
	return []Manager{
		{CRMUser: int64(userLead), Name: "Lena", Endpoints: []string{"PJSIP/110", "PJSIP/79160000010@trunk"}},
		{CRMUser: int64(userContact), Name: "Kolya", Endpoints: []string{"PJSIP/120"}},
		{CRMUser: int64(userCompany), Name: "Olga", Endpoints: []string{"PJSIP/130"}},
		{CRMUser: int64(userOther), Name: "Ivan", Endpoints: []string{"PJSIP/140", "PJSIP/141", "PJSIP/142"}},
	}
}

// newTestRouter builds a Router with test defaults; edit adjusts the options.
func newTestRouter(t testing.TB, dir crm.Directory, clock *testClock, edit func(*Options)) *Router {
	t.Helper()
	opts := Options{
		Directory:     dir,
		Managers:      testManagers(),
		LookupTimeout: 500 * time.Millisecond,
		Enabled:       true,
		Now:           clock.Now,
	}
	if edit != nil {
		edit(&opts)
	}
	r, err := New(opts)
	require.NoError(t, err)
	return r
}

// cacheKinds runs a test against every OwnerCache implementation.
var cacheKinds = []struct {
	name string
	make func(t testing.TB, clock *testClock) OwnerCache
}{
	{"memory", func(_ testing.TB, clock *testClock) OwnerCache { return NewMemoryCache(0, clock.Now) }},
	{"redis", func(t testing.TB, _ *testClock) OwnerCache { return NewRedisCache(testrig.Redis(t), "") }},
}

// basicWorld: the caller's contact 1 (responsible userContact) in company 5 (userCompany)
// with open lead 100 (userLead).
func basicWorld() *world {
	w := newWorld()
	w.contacts = []crm.Contact{{ID: 1, Responsible: userContact, Phones: []string{"+7 916 123-45-67"}, CompanyID: 5, UpdatedAt: tBase}}
	w.leads[1] = []crm.Lead{{ID: 100, StatusID: 1, Responsible: userLead, UpdatedAt: tBase}}
	w.companies[5] = crm.Company{ID: 5, Responsible: userCompany}
	return w
}

func call() Call {
	return Call{Caller: callerRaw, Called: "4951112233", ChannelID: "1700000000.1", LinkedID: "1700000000.1"}
}
