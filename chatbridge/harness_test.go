package chatbridge_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/chatapp"
	"github.com/crmlink/crmlink/chatbridge/sandbox"
	"github.com/crmlink/crmlink/chatbridge/wazzup"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/httpapi"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/scenarios/scenariotest"
)

func TestMain(m *testing.M) { testrig.Main(m) }

// t0 is when every test starts; the clock only moves when a test moves it.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// The account: crmlink's own CRM user, a person editing cards, three managers.
const (
	integrationUser crm.UserID = 900
	person          crm.UserID = 55

	ann   crm.UserID = 11
	bob   crm.UserID = 12
	carol crm.UserID = 13
)

// Chat ids of the managers.
const (
	annWazzup, bobWazzup, carolWazzup    = "u-ann", "u-bob", "u-carol"
	annChatApp, bobChatApp, carolChatApp = "7", "8", "9"
)

// The client: one contact with an open deal, a closed deal and a company; chats in Wazzup
// (the contact) and in two ChatApp WhatsApp licenses.
const (
	clientPhone  = crm.Phone("+79161234567")
	clientDigits = "79161234567"
	contactID    = 501
	openLead     = 601
	closedLead   = 602
	companyID    = 701

	wazzupChat   = "501"
	chatAppChat1 = "1001/grWhatsApp/79161234567"
	chatAppChat2 = "1002/grWhatsApp/79161234567"

	otherPhone   = "+79035550000"
	otherContact = 502
	otherLead    = 603

	wazzupCRMKey  = "wazzup-crm-key-0123456789"
	chatAppSecret = "chatapp-secret-0123456789"
	jivoSecret    = "jivo-secret-0123456789abc"
)

// testClock is the clock of the sync, the guard, the adapters and the sandbox.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testConfig is both directions on deals and contacts, Wazzup and ChatApp synced.
func testConfig(apiURL string) chatbridge.Config {
	c := chatbridge.Defaults()
	c.CRMUserID = integrationUser
	c.Platforms = []chatbridge.PlatformConfig{
		{Platform: chatbridge.Wazzup, Company: "wz-acme", Sync: true, APIURL: apiURL, APIKey: sandbox.DefaultWazzupAPIKey, WebhookSecret: wazzupCRMKey},
		{Platform: chatbridge.ChatApp, Company: "ca-acme", Sync: true, APIURL: apiURL, Email: sandbox.DefaultChatAppEmail, Password: sandbox.DefaultChatAppPassword, AppID: sandbox.DefaultChatAppAppID, WebhookSecret: chatAppSecret,
			Licenses: []chatbridge.License{{ID: "1001", Messenger: "grWhatsApp"}, {ID: "1002", Messenger: "grWhatsApp"}}},
		{Platform: chatbridge.Jivo, Company: "jv-acme", WebhookSecret: jivoSecret},
	}
	c.Users = []chatbridge.UserConfig{
		{CRMUserID: ann, Name: "Ann", Wazzup: annWazzup, ChatApp: annChatApp},
		{CRMUserID: bob, Name: "Bob", Wazzup: bobWazzup, ChatApp: bobChatApp},
		{CRMUserID: carol, Name: "Carol", Role: chatbridge.RoleSupervisor, Wazzup: carolWazzup, ChatApp: carolChatApp},
	}
	return c
}

// fakeCRM is scenariotest's CRM with what the sync needs on top: Links (a lead's and a
// company's contacts), company responsibles that stick, a count of crmlink's writes, and
// the webhook amoCRM would send for each of them.
type fakeCRM struct {
	*scenariotest.CRM
	h *harness

	mu sync.Mutex
	// echoBy is the modified_user_id of the webhooks crmlink's writes cause.
	echoBy crm.UserID
	writes []scenariotest.ResponsibleSet
}

func (f *fakeCRM) LeadContacts(_ context.Context, id int64) ([]int64, error) {
	for _, l := range f.All().Leads {
		if l.ID == id {
			return l.ContactIDs, nil
		}
	}
	return nil, nil
}

func (f *fakeCRM) CompanyContacts(_ context.Context, id int64) ([]int64, error) {
	var out []int64
	for _, c := range f.All().Contacts {
		if c.CompanyID == id {
			out = append(out, c.ID)
		}
	}
	return out, nil
}

// SetResponsible is crmlink's write: it is counted and its webhook queued.
func (f *fakeCRM) SetResponsible(ctx context.Context, e crm.EntityType, id int64, u crm.UserID) error {
	if err := f.apply(ctx, e, id, u); err != nil {
		return err
	}
	f.mu.Lock()
	f.writes = append(f.writes, scenariotest.ResponsibleSet{Entity: e, ID: id, User: u})
	by := f.echoBy
	f.mu.Unlock()
	f.h.queueCRM(crm.ResponsibleChange{Entity: e, ID: id, Responsible: u, ModifiedBy: by, At: f.h.clock.Now()})
	return nil
}

func (f *fakeCRM) apply(ctx context.Context, e crm.EntityType, id int64, u crm.UserID) error {
	if err := f.CRM.SetResponsible(ctx, e, id, u); err != nil {
		return err
	}
	if e == crm.EntityCompany {
		co, err := f.CRM.Company(ctx, id)
		if err != nil {
			return err
		}
		co.Responsible = u
		f.AddCompany(co)
	}
	return nil
}

// Writes returns crmlink's writes so far.
func (f *fakeCRM) Writes() []scenariotest.ResponsibleSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

// responsible reads an entity's responsible now.
func (f *fakeCRM) responsible(t *testing.T, e crm.EntityType, id int64) crm.UserID {
	t.Helper()
	switch e {
	case crm.EntityContact:
		c, err := f.Contact(context.Background(), id)
		require.NoError(t, err)
		return c.Responsible
	case crm.EntityLead:
		ls, err := f.Leads(context.Background(), []int64{id})
		require.NoError(t, err)
		require.Len(t, ls, 1)
		return ls[0].Responsible
	}
	co, err := f.Company(context.Background(), id)
	require.NoError(t, err)
	return co.Responsible
}

// harness is one crmlink (Sync with both adapters) between the fake CRM and the chat
// sandbox. Webhooks from either side are queued, and pump handles them until none is
// left, as the event queue would.
type harness struct {
	t       *testing.T
	clock   *testClock
	crm     *fakeCRM
	chats   *sandbox.Server
	wazzup  *wazzup.Client
	chatapp *chatapp.Client
	guard   chatbridge.GuardStore
	sync    *chatbridge.Sync

	mu         sync.Mutex
	pendingCRM []crm.ResponsibleChange
	pendingHub []chatbridge.Event
	results    []chatbridge.Result
}

type harnessOption func(*harnessOptions)

type harnessOptions struct {
	cfg   func(*chatbridge.Config)
	guard chatbridge.GuardStore
	clock *testClock
}

func withConfig(f func(*chatbridge.Config)) harnessOption {
	return func(o *harnessOptions) { o.cfg = f }
}

func withGuard(g chatbridge.GuardStore, clk *testClock) harnessOption {
	return func(o *harnessOptions) { o.guard, o.clock = g, clk }
}

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	var o harnessOptions
	for _, f := range opts {
		f(&o)
	}
	clk := o.clock
	if clk == nil {
		clk = &testClock{now: t0}
	}
	h := &harness{t: t, clock: clk}

	fake := scenariotest.New()
	fake.Now = clk.Now
	h.crm = &fakeCRM{CRM: fake, h: h, echoBy: integrationUser}
	fake.SetUsers(crm.User{ID: ann, Name: "Ann", Active: true}, crm.User{ID: bob, Name: "Bob", Active: true}, crm.User{ID: carol, Name: "Carol", Active: true})
	fake.AddCompany(crm.Company{ID: companyID, Name: "Acme", Responsible: ann, UpdatedAt: t0.Add(-72 * time.Hour)})
	fake.AddContact(crm.Contact{ID: contactID, Name: "Anna Petrova", Responsible: ann, Phones: []string{"8 (916) 123-45-67"},
		CompanyID: companyID, UpdatedAt: t0.Add(-48 * time.Hour)})
	fake.AddLead(crm.Lead{ID: openLead, Name: "Order #17", StatusID: 100, Responsible: ann, UpdatedAt: t0.Add(-24 * time.Hour)}, contactID)
	fake.AddLead(crm.Lead{ID: closedLead, Name: "Order #3", StatusID: crm.StatusWon, Responsible: carol, UpdatedAt: t0.Add(-90 * 24 * time.Hour)}, contactID)
	fake.AddContact(crm.Contact{ID: otherContact, Name: "Oleg", Responsible: carol, Phones: []string{otherPhone}, UpdatedAt: t0.Add(-time.Hour)})
	fake.AddLead(crm.Lead{ID: otherLead, Name: "Order #20", StatusID: 100, Responsible: carol, UpdatedAt: t0.Add(-time.Hour)}, otherContact)

	hooks := httptest.NewServer(http.HandlerFunc(h.receive))
	t.Cleanup(hooks.Close)
	h.chats = sandbox.New(sandbox.Seed{
		Wazzup: sandbox.WazzupSeed{CRMKey: wazzupCRMKey, WebhookURL: hooks.URL + "/hooks/wazzup",
			Users: []sandbox.WazzupUser{{ID: annWazzup, Name: "Ann"}, {ID: bobWazzup, Name: "Bob"}, {ID: carolWazzup, Name: "Carol"}},
			Contacts: []sandbox.WazzupContact{
				{ID: wazzupChat, ResponsibleUserID: annWazzup, Name: "Anna Petrova", ContactData: []sandbox.WazzupContactData{{ChatType: "whatsapp", ChatID: clientDigits}}},
				{ID: "502", ResponsibleUserID: carolWazzup, Name: "Oleg", ContactData: []sandbox.WazzupContactData{{ChatType: "whatsapp", ChatID: "79035550000"}}},
			}},
		ChatApp: sandbox.ChatAppSeed{WebhookURL: hooks.URL + "/hooks/chatapp/" + chatAppSecret,
			Users: []sandbox.ChatAppUser{{ID: annChatApp, Name: "Ann"}, {ID: bobChatApp, Name: "Bob"}, {ID: carolChatApp, Name: "Carol"}},
			Chats: []sandbox.ChatAppChat{
				{License: "1001", Messenger: "grWhatsApp", ID: clientDigits, Name: "Anna", Phone: clientDigits, Responsible: annChatApp},
				{License: "1002", Messenger: "grWhatsApp", ID: clientDigits, Name: "Anna", Phone: clientDigits, Responsible: annChatApp},
				{License: "1001", Messenger: "grWhatsApp", ID: "79035550000", Name: "Oleg", Phone: "79035550000", Responsible: carolChatApp},
			}},
	}, sandbox.WithClock(clk.Now))
	api := httptest.NewServer(h.chats)
	t.Cleanup(api.Close)

	cfg := testConfig(api.URL)
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	var err error
	h.wazzup, err = wazzup.New(wazzup.Options{APIURL: api.URL, APIKey: sandbox.DefaultWazzupAPIKey, CRMKey: wazzupCRMKey, Now: clk.Now})
	require.NoError(t, err)
	h.chatapp, err = chatapp.New(chatapp.Options{APIURL: api.URL, Credentials: chatapp.Credentials{Email: sandbox.DefaultChatAppEmail, Password: sandbox.DefaultChatAppPassword, AppID: sandbox.DefaultChatAppAppID}, WebhookSecret: chatAppSecret,
		Licenses: cfg.Platforms[1].Licenses, Now: clk.Now})
	require.NoError(t, err)
	h.guard = o.guard
	if h.guard == nil {
		h.guard = chatbridge.NewMemoryGuard(clk.Now)
	}
	h.sync = h.newSync(t, cfg)
	return h
}

// newSync builds another crmlink instance on the same CRM, chats and guard.
func (h *harness) newSync(t *testing.T, cfg chatbridge.Config) *chatbridge.Sync {
	s, err := chatbridge.NewSync(cfg, h.crm, h.crm, h.guard,
		chatbridge.WithPlatform(h.wazzup), chatbridge.WithPlatform(h.chatapp), chatbridge.WithClock(h.clock.Now))
	require.NoError(t, err)
	return s
}

// receive is crmlink's webhook endpoint for both platforms: parse and queue.
func (h *harness) receive(w http.ResponseWriter, r *http.Request) {
	var in chatbridge.Inbound = h.chatapp
	if r.URL.Path == "/hooks/wazzup" {
		in = h.wazzup
	}
	events, err := in.ParseWebhook(r)
	if err != nil {
		h.t.Errorf("webhook %s refused: %v", r.URL.Path, err)
		w.WriteHeader(httpapi.ChatWebhookStatus(err))
		return
	}
	h.mu.Lock()
	for _, e := range events {
		// As httpapi.ChatWebhook: a request for a CRM entity is answered, never queued.
		if !e.Kind.Wanted() {
			h.pendingHub = append(h.pendingHub, e)
		}
	}
	h.mu.Unlock()
}

func (h *harness) queueCRM(ch crm.ResponsibleChange) {
	h.mu.Lock()
	h.pendingCRM = append(h.pendingCRM, ch)
	h.mu.Unlock()
}

// personInCRM is a person giving an entity to a manager in amoCRM: the card changes and
// the webhook is queued (At in whole seconds, as amoCRM's last_modified).
func (h *harness) personInCRM(e crm.EntityType, id int64, u crm.UserID) {
	h.t.Helper()
	require.NoError(h.t, h.crm.apply(context.Background(), e, id, u))
	h.queueCRM(crm.ResponsibleChange{Entity: e, ID: id, Responsible: u, ModifiedBy: person, At: h.clock.Now().Truncate(time.Second)})
}

// personInChatApp is a ChatApp employee giving a chat to a colleague.
func (h *harness) personInChatApp(ref, user string) {
	h.t.Helper()
	d, err := h.chats.ChatAppAssign(context.Background(), ref, user)
	require.NoError(h.t, err)
	require.NotNil(h.t, d)
	require.Equal(h.t, http.StatusOK, d.Status, d.Error)
}

// pump handles queued webhooks until none is left; more than a few rounds would be a
// ping-pong loop.
func (h *harness) pump() []chatbridge.Result {
	h.t.Helper()
	ctx := context.Background()
	start := len(h.results)
	for round := 0; ; round++ {
		require.Less(h.t, round, 10, "the sync did not settle: changes keep coming back")
		h.mu.Lock()
		crmChanges, chatEvents := h.pendingCRM, h.pendingHub
		h.pendingCRM, h.pendingHub = nil, nil
		h.mu.Unlock()
		if len(crmChanges)+len(chatEvents) == 0 {
			return h.results[start:]
		}
		for _, ch := range crmChanges {
			res, err := h.sync.HandleCRMChange(ctx, ch)
			require.NoError(h.t, err)
			h.results = append(h.results, res)
		}
		for _, e := range chatEvents {
			res, err := h.sync.HandleChatEvent(ctx, e)
			require.NoError(h.t, err)
			h.results = append(h.results, res)
		}
	}
}

// outcomes lists the outcomes of results.
func outcomes(rs []chatbridge.Result) []chatbridge.Outcome {
	out := make([]chatbridge.Outcome, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Outcome)
	}
	return out
}

// clientChats is who is responsible for each of the client's chats now.
func (h *harness) clientChats() map[string]string { return h.chats.Responsible(string(clientPhone)) }

func everyChat(wz, ca string) map[string]string {
	return map[string]string{"wazzup:" + wazzupChat: wz, "chatapp:" + chatAppChat1: ca, "chatapp:" + chatAppChat2: ca}
}

type sandboxChat = sandbox.ChatAppChat

func itoa(i int) string { return strconv.Itoa(i) }

// redisClient is a real Redis database of the test's own.
func redisClient(t *testing.T) *redis.Client { return testrig.Redis(t) }
