// Package chat tests crmlink's chat side end to end: crmlink as `serve` wires it (HTTP
// webhooks, the durable queue on the rig's real Redis, the responsible sync, online-chat
// leads, chat access) between the amoCRM sandbox and the chat platform sandbox, both
// talking to crmlink over HTTP exactly as the SaaS platforms would.
package chat

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	chatsandbox "github.com/crmlink/crmlink/chatbridge/sandbox"
	"github.com/crmlink/crmlink/crm"
	amosandbox "github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/app"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
)

func TestMain(m *testing.M) { testrig.Main(m) }

// The account: crmlink's own amoCRM user, a person editing cards, three managers, a
// supervisor and a quality controller.
const (
	crmlinkUser = 900
	person      = 55

	ann   = 1001
	bob   = 1002
	carol = 1003
	sue   = 1010 // supervisor
	quinn = 1011 // quality control

	annWazzup, bobWazzup, carolWazzup = "wz-ann", "wz-bob", "wz-carol"
	annChatApp, bobChatApp            = "7", "8"
)

// The client: contact 2001 with an open deal 4001 and a won deal 4002, chats in Wazzup
// (contact 2001) and in one ChatApp WhatsApp license.
const (
	clientPhone  = "+79161234567"
	clientDigits = "79161234567"
	clientID     = 2001
	openDeal     = 4001
	wonDeal      = 4002
	license      = "5501"
	chatAppChat  = license + "/grWhatsApp/" + clientDigits
	wazzupChat   = "2001"
	otherPhone   = "+79035550000"
	unknownPhone = "+79990001122"

	amoSecret     = "amo-hook-secret-0123456789"
	wazzupCRMKey  = "wazzup-crm-key-0123456789"
	chatAppSecret = "chatapp-secret-0123456789"
	jivoSecret    = "jivo-secret-0123456789abc"
	apiToken      = "chat-api-token"
)

func amoSeed() amosandbox.Seed {
	return amosandbox.Seed{
		Token: "chat-token", RateLimit: 7, APIUserID: crmlinkUser,
		Pipeline: amosandbox.Pipeline{ID: 5001, StatusID: 5101},
		Users: []amosandbox.User{
			{ID: crmlinkUser, Name: "crmlink"}, {ID: person, Name: "Office admin"},
			{ID: ann, Name: "Ann"}, {ID: bob, Name: "Bob"}, {ID: carol, Name: "Carol"},
			{ID: sue, Name: "Sue"}, {ID: quinn, Name: "Quinn"},
		},
		Contacts: []amosandbox.Contact{
			{ID: clientID, Name: "Anna Petrova", ResponsibleUserID: ann, Phones: []string{"8 (916) 123-45-67"}, LeadIDs: []int64{openDeal, wonDeal}},
			{ID: 2002, Name: "Oleg", ResponsibleUserID: carol, Phones: []string{otherPhone}},
		},
		Leads: []amosandbox.Lead{
			{ID: openDeal, Name: "Order #17", StatusID: 5101, PipelineID: 5001, ResponsibleUserID: ann, ContactIDs: []int64{clientID}},
			{ID: wonDeal, Name: "Order #3", StatusID: 142, PipelineID: 5001, ResponsibleUserID: carol, ContactIDs: []int64{clientID}},
		},
	}
}

func chatSeed(api string) chatsandbox.Seed {
	return chatsandbox.Seed{
		Wazzup: chatsandbox.WazzupSeed{CRMKey: wazzupCRMKey, WebhookURL: api + "/v1/chat/wazzup",
			Users: []chatsandbox.WazzupUser{{ID: annWazzup, Name: "Ann"}, {ID: bobWazzup, Name: "Bob"}, {ID: carolWazzup, Name: "Carol"}},
			Contacts: []chatsandbox.WazzupContact{
				{ID: wazzupChat, ResponsibleUserID: annWazzup, Name: "Anna Petrova", ContactData: []chatsandbox.WazzupContactData{{ChatType: "whatsapp", ChatID: clientDigits}}},
			}},
		ChatApp: chatsandbox.ChatAppSeed{WebhookURL: api + "/v1/chat/chatapp/" + chatAppSecret,
			Users: []chatsandbox.ChatAppUser{{ID: annChatApp, Name: "Ann"}, {ID: bobChatApp, Name: "Bob"}},
			Chats: []chatsandbox.ChatAppChat{{License: license, Messenger: "grWhatsApp", ID: clientDigits, Name: "Anna Petrova", Phone: clientDigits, Responsible: annChatApp}},
		},
	}
}

// stack is crmlink between the two sandboxes.
type stack struct {
	amo   *amosandbox.Server
	chats *chatsandbox.Server
	app   *app.App
	stop  func() // stops app
	api   string
	cfg   *config.Config
}

func testLogger(t *testing.T) zerolog.Logger {
	if os.Getenv("CRMLINK_TEST_LOG") != "" {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	}
	return zerolog.Nop()
}

func startStack(t *testing.T, tweak ...func(*config.Config)) *stack {
	t.Helper()
	return startStackSeeded(t, nil, tweak...)
}

// startStackSeeded is startStack with the chat platforms' seed adjusted first (token
// lifetimes, say).
func startStackSeeded(t *testing.T, seedTweak func(*chatsandbox.Seed), tweak ...func(*config.Config)) *stack {
	t.Helper()
	amo := amosandbox.New(amoSeed(), amosandbox.WithLogger(testLogger(t)))
	amoSrv := httptest.NewServer(amo)
	t.Cleanup(amoSrv.Close)
	t.Cleanup(amo.Close)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	api := "http://" + l.Addr().String()
	require.NoError(t, amo.SetWebhookURL(api+"/v1/webhooks/amocrm/"+amoSecret))
	seed := chatSeed(api)
	if seedTweak != nil {
		seedTweak(&seed)
	}
	chats := chatsandbox.New(seed, chatsandbox.WithLogger(testLogger(t)))
	chatSrv := httptest.NewServer(chats)
	t.Cleanup(chatSrv.Close)

	redisAddr, redisDB := testrig.RedisDB(t)
	cfg := config.Default()
	cfg.HTTP.Listen, cfg.HTTP.Token = l.Addr().String(), apiToken
	cfg.DataDir = t.TempDir()
	cfg.Redis.Addrs, cfg.Redis.DB = []string{redisAddr}, redisDB
	cfg.Asterisk.ARI.Enabled = false
	cfg.AmoCRM.BaseURL, cfg.AmoCRM.Token, cfg.AmoCRM.WebhookSecret = amoSrv.URL, "chat-token", amoSecret
	cfg.Managers = []config.Manager{
		{CRMUser: ann, Name: "Ann", Endpoints: []string{"PJSIP/101"}},
		{CRMUser: bob, Name: "Bob", Endpoints: []string{"PJSIP/102"}},
		{CRMUser: carol, Name: "Carol", Endpoints: []string{"PJSIP/103"}},
	}
	c := &cfg.Chat
	c.CRMUserID = crmlinkUser
	c.CRMToChat = chatbridge.Direction{Enabled: true, Entities: []crm.EntityType{crm.EntityLead, crm.EntityContact}}
	c.ChatToCRM = chatbridge.Direction{Enabled: true, Entities: []crm.EntityType{crm.EntityLead, crm.EntityContact}}
	c.Platforms = []chatbridge.PlatformConfig{
		{Platform: chatbridge.Wazzup, Company: "wz-acme", Sync: true, APIURL: chatSrv.URL, APIKey: chatsandbox.DefaultWazzupAPIKey, WebhookSecret: wazzupCRMKey},
		{Platform: chatbridge.ChatApp, Company: "ca-acme", Sync: true, APIURL: chatSrv.URL, Email: chatsandbox.DefaultChatAppEmail, Password: chatsandbox.DefaultChatAppPassword, AppID: chatsandbox.DefaultChatAppAppID, WebhookSecret: chatAppSecret,
			Licenses: []chatbridge.License{{ID: license, Messenger: "grWhatsApp"}}},
		{Platform: chatbridge.Jivo, Company: "jv-acme", WebhookSecret: jivoSecret},
	}
	c.Users = []chatbridge.UserConfig{
		{CRMUserID: ann, Name: "Ann", Wazzup: annWazzup, ChatApp: annChatApp, Jivo: "j-ann"},
		{CRMUserID: bob, Name: "Bob", Wazzup: bobWazzup, ChatApp: bobChatApp, Jivo: "j-bob"},
		{CRMUserID: carol, Name: "Carol", Wazzup: carolWazzup, Jivo: "j-carol"},
		{CRMUserID: sue, Name: "Sue", Role: chatbridge.RoleSupervisor, Jivo: "j-sue"},
		{CRMUserID: quinn, Name: "Quinn", Role: chatbridge.RoleQualityControl, Jivo: "j-quinn"},
	}
	for _, f := range tweak {
		f(cfg)
	}
	require.Empty(t, cfg.Validate(), "test configuration")

	s := &stack{amo: amo, chats: chats, api: api, cfg: cfg}
	s.serve(t, l)
	return s
}

// serve runs crmlink (as `serve` wires it) on the listener until the test ends or stop.
func (s *stack) serve(t *testing.T, l net.Listener) {
	t.Helper()
	a, err := app.New(s.cfg, testLogger(t))
	require.NoError(t, err)
	s.app = a
	s.stop = testrig.Run(t, "crmlink", func(ctx context.Context) error { return a.Serve(ctx, l) }, a.Close)
	testrig.WaitFor(t, 5*time.Second, "crmlink's HTTP API up", func() bool {
		c, err := net.Dial("tcp", l.Addr().String())
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
}

// restart stops crmlink and starts a new one with the same configuration, Redis and
// address, as a service restart does.
func (s *stack) restart(t *testing.T) {
	t.Helper()
	s.stop()
	l, err := net.Listen("tcp", s.cfg.HTTP.Listen)
	require.NoError(t, err)
	s.serve(t, l)
}

// get is a GET on crmlink's API with the token: chat-access and the queue reveal clients.
func (s *stack) get(path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, s.api+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.HTTP.Token)
	return http.DefaultClient.Do(req)
}

// responsible reads an entity's responsible from the amoCRM sandbox's state.
func (s *stack) responsible(t *testing.T, entity string, id int64) int64 {
	t.Helper()
	st := s.amo.State()
	switch entity {
	case "contact":
		for _, c := range st.Contacts {
			if c.ID == id {
				return c.ResponsibleUserID
			}
		}
	case "lead":
		for _, l := range st.Leads {
			if l.ID == id {
				return l.ResponsibleUserID
			}
		}
	}
	t.Fatalf("no %s %d in the sandbox", entity, id)
	return 0
}

// crmWrites counts crmlink's responsible writes to amoCRM so far.
func (s *stack) crmWrites() int {
	return s.amo.Requests("PATCH /api/v4/leads") + s.amo.Requests("PATCH /api/v4/contacts") + s.amo.Requests("PATCH /api/v4/companies")
}

// chatsOf maps the client's chats ("wazzup:2001", "chatapp:5501/grWhatsApp/79...") to
// their responsible chat user now.
func (s *stack) chatsOf(phone string) map[string]string { return s.chats.Responsible(phone) }

// personSets is a person reassigning an entity in amoCRM's interface; it returns once
// crmlink has answered amoCRM's webhook.
func (s *stack) personSets(t *testing.T, entity string, id, user int64) {
	t.Helper()
	res, err := s.amo.SetResponsible(context.Background(), amosandbox.ResponsibleUpdate{Entity: entity, ID: id, ResponsibleUserID: user, ModifiedUserID: person})
	require.NoError(t, err)
	require.NotNil(t, res.Webhook)
	require.Equal(t, 200, res.Webhook.Status, "crmlink's answer to amoCRM's webhook: %+v", res.Webhook)
}
