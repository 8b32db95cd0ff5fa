package chatbridge_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/chatapp"
	"github.com/crmlink/crmlink/chatbridge/sandbox"
	"github.com/crmlink/crmlink/chatbridge/wazzup"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm"
	amosandbox "github.com/crmlink/crmlink/crm/amocrm/sandbox"
)

// amoLinks reads a lead's and a company's contacts from the amoCRM sandbox's state (the
// amoCRM client has no such read yet).
type amoLinks struct{ sb *amosandbox.Server }

func (l amoLinks) LeadContacts(_ context.Context, id int64) ([]int64, error) {
	st := l.sb.State()
	var out []int64
	for _, ld := range st.Leads {
		if ld.ID == id {
			out = append(out, ld.ContactIDs...)
		}
	}
	return out, nil
}

func (l amoLinks) CompanyContacts(_ context.Context, id int64) ([]int64, error) {
	var out []int64
	for _, c := range l.sb.State().Contacts {
		if c.CompanyID == id {
			out = append(out, c.ID)
		}
	}
	return out, nil
}

// The whole path with the real amoCRM client against the amoCRM sandbox and the real
// adapters against the chat sandbox, both sides posting real webhooks: a deal's new
// responsible reaches the client's chats; a chat reassigned in ChatApp reaches the deal
// and the contact; amoCRM's webhooks of crmlink's own writes (modified_user_id = the
// token's user) and ChatApp's reports of crmlink's reassignments come back and are
// ignored. Everything runs on the real clock: the sandboxes stamp webhooks with it.
func TestWithTheAmoCRMSandbox(t *testing.T) {
	var mu sync.Mutex
	var crmQueue []crm.ResponsibleChange
	var chatQueue []chatbridge.Event

	amoHooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		changes, _, err := amocrm.ParseWebhook(r.PostForm)
		require.NoError(t, err)
		mu.Lock()
		crmQueue = append(crmQueue, changes...)
		mu.Unlock()
	}))
	defer amoHooks.Close()
	amo := amosandbox.New(amosandbox.Seed{
		APIUserID: int64(integrationUser),
		Users: []amosandbox.User{{ID: int64(integrationUser), Name: "crmlink"}, {ID: int64(person), Name: "Head of sales"},
			{ID: int64(ann), Name: "Ann"}, {ID: int64(bob), Name: "Bob"}, {ID: int64(carol), Name: "Carol"}},
		Contacts: []amosandbox.Contact{{ID: contactID, Name: "Anna Petrova", ResponsibleUserID: int64(ann), Phones: []string{"+7 (916) 123-45-67"}}},
		Leads: []amosandbox.Lead{{ID: openLead, Name: "Order #17", PipelineID: amosandbox.DefaultPipelineID, StatusID: amosandbox.DefaultStatusID,
			ResponsibleUserID: int64(ann), ContactIDs: []int64{contactID}}},
	}, amosandbox.WithRateLimit(-1), amosandbox.WithWebhookURL(amoHooks.URL+"/v1/webhooks/amocrm/s"))
	amoSrv := httptest.NewServer(amo)
	defer amoSrv.Close()
	defer amo.Close()
	client, err := amocrm.New(amocrm.Options{BaseURL: amoSrv.URL, Token: amosandbox.DefaultToken, RateLimit: 1000})
	require.NoError(t, err)

	var wz *wazzup.Client
	var ca *chatapp.Client
	chatHooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in chatbridge.Inbound = ca
		if r.URL.Path == "/hooks/wazzup" {
			in = wz
		}
		events, err := in.ParseWebhook(r)
		require.NoError(t, err)
		mu.Lock()
		chatQueue = append(chatQueue, events...)
		mu.Unlock()
	}))
	defer chatHooks.Close()
	chats := sandbox.New(sandbox.Seed{
		Wazzup: sandbox.WazzupSeed{CRMKey: wazzupCRMKey, WebhookURL: chatHooks.URL + "/hooks/wazzup",
			Users: []sandbox.WazzupUser{{ID: annWazzup, Name: "Ann"}, {ID: bobWazzup, Name: "Bob"}, {ID: carolWazzup, Name: "Carol"}},
			Contacts: []sandbox.WazzupContact{{ID: wazzupChat, ResponsibleUserID: annWazzup, Name: "Anna Petrova",
				ContactData: []sandbox.WazzupContactData{{ChatType: "whatsapp", ChatID: clientDigits}}}}},
		ChatApp: sandbox.ChatAppSeed{WebhookURL: chatHooks.URL + "/hooks/chatapp/" + chatAppSecret,
			Users: []sandbox.ChatAppUser{{ID: annChatApp, Name: "Ann"}, {ID: bobChatApp, Name: "Bob"}, {ID: carolChatApp, Name: "Carol"}},
			Chats: []sandbox.ChatAppChat{
				{License: "1001", Messenger: "grWhatsApp", ID: clientDigits, Phone: clientDigits, Responsible: annChatApp},
				{License: "1002", Messenger: "grWhatsApp", ID: clientDigits, Phone: clientDigits, Responsible: annChatApp},
			}},
	})
	chatSrv := httptest.NewServer(chats)
	defer chatSrv.Close()
	cfg := testConfig(chatSrv.URL)
	wz, err = wazzup.New(wazzup.Options{APIURL: chatSrv.URL, APIKey: sandbox.DefaultWazzupAPIKey, CRMKey: wazzupCRMKey})
	require.NoError(t, err)
	ca, err = chatapp.New(chatapp.Options{APIURL: chatSrv.URL, Credentials: chatapp.Credentials{Email: sandbox.DefaultChatAppEmail, Password: sandbox.DefaultChatAppPassword, AppID: sandbox.DefaultChatAppAppID}, WebhookSecret: chatAppSecret, Licenses: cfg.Platforms[1].Licenses})
	require.NoError(t, err)

	s, err := chatbridge.NewSync(cfg, client, client, chatbridge.NewMemoryGuard(nil),
		chatbridge.WithPlatform(wz), chatbridge.WithPlatform(ca), chatbridge.WithLinks(amoLinks{amo}))
	require.NoError(t, err)

	ctx := context.Background()
	pump := func() (outcomes []chatbridge.Outcome) {
		for round := 0; ; round++ {
			require.Less(t, round, 10, "the sync did not settle")
			mu.Lock()
			changes, events := crmQueue, chatQueue
			crmQueue, chatQueue = nil, nil
			mu.Unlock()
			if len(changes)+len(events) == 0 {
				return outcomes
			}
			for _, ch := range changes {
				res, err := s.HandleCRMChange(ctx, ch)
				require.NoError(t, err)
				outcomes = append(outcomes, res.Outcome)
			}
			for _, e := range events {
				res, err := s.HandleChatEvent(ctx, e)
				require.NoError(t, err)
				outcomes = append(outcomes, res.Outcome)
			}
		}
	}
	amoResponsible := func(entity string, id int64) int64 {
		st := amo.State()
		if entity == "lead" {
			for _, l := range st.Leads {
				if l.ID == id {
					return l.ResponsibleUserID
				}
			}
		}
		for _, c := range st.Contacts {
			if c.ID == id {
				return c.ResponsibleUserID
			}
		}
		return 0
	}

	// The head of sales gives the deal to Bob in amoCRM.
	start := time.Now()
	_, err = amo.SetResponsible(ctx, amosandbox.ResponsibleUpdate{Entity: "lead", ID: openLead, ResponsibleUserID: int64(bob), ModifiedUserID: int64(person)})
	require.NoError(t, err)
	assert.Equal(t, []chatbridge.Outcome{chatbridge.OutcomeSynced, chatbridge.OutcomeEcho, chatbridge.OutcomeEcho}, pump())
	assert.Equal(t, everyChat(bobWazzup, bobChatApp), chats.Responsible(string(clientPhone)))
	assert.Less(t, time.Since(start), time.Second, "the chats follow within a second")

	// amoCRM's and ChatApp's times have whole seconds; a change in the same second as the
	// last one applied counts as later (the later arrival wins).
	// A ChatApp employee gives the chat to Carol.
	_, err = chats.ChatAppAssign(ctx, chatAppChat1, carolChatApp)
	require.NoError(t, err)
	assert.Equal(t, []chatbridge.Outcome{chatbridge.OutcomeSynced, chatbridge.OutcomeEcho, chatbridge.OutcomeEcho}, pump(),
		"the chat change, then amoCRM's webhooks of the deal and the contact crmlink changed")
	assert.Equal(t, int64(carol), amoResponsible("lead", openLead))
	assert.Equal(t, int64(carol), amoResponsible("contact", contactID))
	assert.Equal(t, 1, amo.Requests("PATCH /api/v4/leads"))
	assert.Equal(t, 1, amo.Requests("PATCH /api/v4/contacts"))
	assert.Equal(t, map[string]string{"wazzup:" + wazzupChat: bobWazzup, "chatapp:" + chatAppChat1: carolChatApp, "chatapp:" + chatAppChat2: bobChatApp},
		chats.Responsible(string(clientPhone)), "nothing echoed back into the chats")
}
