package wazzup_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/sandbox"
	"github.com/crmlink/crmlink/chatbridge/wazzup"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/httpapi"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const crmKey = "wazzup-crm-key-0123456789"

func newClient(t testing.TB, apiURL string) *wazzup.Client {
	t.Helper()
	c, err := wazzup.New(wazzup.Options{APIURL: apiURL, APIKey: sandbox.DefaultWazzupAPIKey, CRMKey: crmKey, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	return c
}

func webhook(body, auth string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/wazzup", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json; charset=utf-8")
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	return r
}

func TestParseWebhook(t *testing.T) {
	c := newClient(t, "http://sandbox.invalid")
	tests := []struct {
		name string
		body string
		want []chatbridge.Event
	}{
		{
			name: "connection test",
			body: `{"test": true}`,
		},
		{
			name: "statuses only",
			body: `{"statuses": [{"messageId": "m0", "timestamp": "2026-03-02T09:00:00Z", "status": "read"}]}`,
		},
		{
			name: "inbound and outgoing messages in one delivery, with statuses",
			body: `{"messages": [
				{"messageId": "m1", "dateTime": "2026-03-02T09:59:58.120Z", "channelId": "ch1", "chatType": "whatsapp",
				 "chatId": "79161234567", "type": "text", "isEcho": false, "text": "Hello", "status": "inbound",
				 "contact": {"name": "Anna", "avatarUri": "https://x/a.png"}},
				{"messageId": "m2", "dateTime": "2026-03-02T09:59:59Z", "chatType": "telegram", "chatId": "55501",
				 "type": "text", "isEcho": true, "text": "Hi!", "authorId": "u-bob", "authorName": "Bob",
				 "contact": {"name": "Anna", "username": "anna", "phone": "79161234567"}}],
				"statuses": [{"messageId": "m0", "status": "delivered"}]}`,
			want: []chatbridge.Event{
				{ID: "wazzup:msg:m1", Platform: chatbridge.Wazzup, Kind: chatbridge.EventMessage, At: time.Date(2026, 3, 2, 9, 59, 58, 120e6, time.UTC),
					Chat:  chatbridge.ChatRef{Platform: chatbridge.Wazzup, ChatType: "whatsapp", ChatID: "79161234567", Name: "Anna"},
					Phone: "+79161234567", RawPhone: "79161234567", ClientName: "Anna",
					Message: &chatbridge.Message{ID: "m1", Text: "Hello", Inbound: true, Type: "text"}},
				{ID: "wazzup:msg:m2", Platform: chatbridge.Wazzup, Kind: chatbridge.EventMessage, At: time.Date(2026, 3, 2, 9, 59, 59, 0, time.UTC),
					Chat:  chatbridge.ChatRef{Platform: chatbridge.Wazzup, ChatType: "telegram", ChatID: "55501", Name: "Anna"},
					Phone: "+79161234567", RawPhone: "79161234567", ClientName: "Anna", ChatUser: "u-bob", ChatUserName: "Bob",
					Message: &chatbridge.Message{ID: "m2", Text: "Hi!", Inbound: false, Type: "text"}},
			},
		},
		{
			name: "createContact: a new client's chat went to a user",
			body: `{"createContact": {"responsibleUserId": "u-ann", "name": "Anna", "contactData": [{"chatType": "whatsapp", "chatId": "79161234567"}], "source": "auto"}}`,
			want: []chatbridge.Event{{
				ID:       chatbridge.DigestID(chatbridge.Wazzup, "createContact", "u-ann", "whatsapp", "79161234567", "", "") + ":contact",
				Platform: chatbridge.Wazzup, Kind: chatbridge.EventContactWanted, At: t0,
				Chat:  chatbridge.ChatRef{Platform: chatbridge.Wazzup, ChatType: "whatsapp", ChatID: "79161234567", Name: "Anna", Responsible: "u-ann"},
				Phone: "+79161234567", RawPhone: "79161234567", ChatUser: "u-ann", ClientName: "Anna",
			}, {
				ID:       chatbridge.DigestID(chatbridge.Wazzup, "createContact", "u-ann", "whatsapp", "79161234567", "", ""),
				Platform: chatbridge.Wazzup, Kind: chatbridge.EventResponsibleAssigned, At: t0,
				Chat:  chatbridge.ChatRef{Platform: chatbridge.Wazzup, ChatType: "whatsapp", ChatID: "79161234567", Name: "Anna", Responsible: "u-ann"},
				Phone: "+79161234567", RawPhone: "79161234567", ChatUser: "u-ann", ClientName: "Anna",
			}},
		},
		{
			name: "createDeal asks for a deal of the contact with the user responsible",
			body: `{"createDeal": {"responsibleUserId": "u-ann", "contacts": ["501"], "source": "byUser"}}`,
			want: []chatbridge.Event{{
				ID:       chatbridge.DigestID(chatbridge.Wazzup, "createDeal", "u-ann", "byUser", "501"),
				Platform: chatbridge.Wazzup, Kind: chatbridge.EventDealWanted, At: t0,
				Chat:     chatbridge.ChatRef{Platform: chatbridge.Wazzup, ID: "501", Responsible: "u-ann"},
				ChatUser: "u-ann", Contacts: []string{"501"},
			}},
		},
		{
			name: "a reassigned contact",
			body: `{"contacts": [{"id": "501", "responsibleUserId": "u-bob", "name": "Anna", "contactData": [{"chatType": "instagram", "chatId": "anna.p"}, {"chatType": "whatsapp", "chatId": "79161234567"}]}]}`,
			want: []chatbridge.Event{{
				ID:       chatbridge.DigestID(chatbridge.Wazzup, "contact", "501", "u-bob", fmt.Sprint(t0.UnixMilli())),
				Platform: chatbridge.Wazzup, Kind: chatbridge.EventResponsibleAssigned, At: t0,
				Chat:  chatbridge.ChatRef{Platform: chatbridge.Wazzup, ID: "501", ChatType: "instagram", ChatID: "anna.p", Name: "Anna", Responsible: "u-bob"},
				Phone: "+79161234567", RawPhone: "79161234567", ChatUser: "u-bob", ClientName: "Anna",
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.ParseWebhook(webhook(tt.body, "Bearer "+crmKey))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseWebhookRefuses(t *testing.T) {
	c := newClient(t, "http://sandbox.invalid")
	tests := []struct {
		name, body, auth string
		want             error
	}{
		{"no Authorization", `{"test": true}`, "", chatbridge.ErrUnauthorized},
		{"wrong crmKey", `{"test": true}`, "Bearer guess", chatbridge.ErrUnauthorized},
		{"not JSON", `<xml/>`, "Bearer " + crmKey, chatbridge.ErrBadWebhook},
		{"not an object", `[1,2]`, "Bearer " + crmKey, chatbridge.ErrBadWebhook},
		{"no known key", `{"hello": 1}`, "Bearer " + crmKey, chatbridge.ErrBadWebhook},
		{"two values", `{"test": true} {"test": true}`, "Bearer " + crmKey, chatbridge.ErrBadWebhook},
		{"message without id", `{"messages": [{"chatType": "whatsapp"}]}`, "Bearer " + crmKey, chatbridge.ErrBadWebhook},
		{"bad dateTime", `{"messages": [{"messageId": "m", "chatType": "whatsapp", "dateTime": "yesterday"}]}`, "Bearer " + crmKey, chatbridge.ErrBadWebhook},
		{"createContact without user", `{"createContact": {"name": "x", "contactData": [{"chatType": "whatsapp", "chatId": "1"}]}}`, "Bearer " + crmKey, chatbridge.ErrBadWebhook},
		{"contact without id", `{"contacts": [{"responsibleUserId": "u"}]}`, "Bearer " + crmKey, chatbridge.ErrBadWebhook},
		{"wrong type", `{"messages": "many"}`, "Bearer " + crmKey, chatbridge.ErrBadWebhook},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ParseWebhook(webhook(tt.body, tt.auth))
			assert.ErrorIs(t, err, tt.want)
		})
	}
	r := httptest.NewRequest(http.MethodGet, "/v1/chat/wazzup", nil)
	r.Header.Set("Authorization", "Bearer "+crmKey)
	_, err := c.ParseWebhook(r)
	assert.ErrorIs(t, err, chatbridge.ErrBadWebhook)
}

// The API side against the chat sandbox.
func TestAPI(t *testing.T) {
	sb := sandbox.New(sandbox.Seed{Wazzup: sandbox.WazzupSeed{
		Users: []sandbox.WazzupUser{{ID: "u-bob", Name: "Bob"}, {ID: "u-ann", Name: "Ann"}},
		Contacts: []sandbox.WazzupContact{{ID: "501", ResponsibleUserID: "u-ann", Name: "Anna", URI: "https://acme.example/contacts/501",
			ContactData: []sandbox.WazzupContactData{{ChatType: "whatsapp", ChatID: "79161234567"}, {ChatType: "telegram", ChatID: "55501"}}}},
	}})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	c := newClient(t, srv.URL)
	ctx := context.Background()

	refs, err := c.ChatsOfClient(ctx, chatbridge.Client{Phones: []crm.Phone{"+79161234567"}, ContactIDs: []int64{501, 999}})
	require.NoError(t, err)
	require.Len(t, refs, 1)
	refs[0].Read = nil
	require.Equal(t, []chatbridge.ChatRef{{Platform: chatbridge.Wazzup, ID: "501", ChatType: "whatsapp", ChatID: "79161234567", Name: "Anna", Responsible: "u-ann"}}, refs)
	assert.Equal(t, 1, sb.Requests("GET /v3/contacts/999"), "an unknown contact is looked up and skipped")

	require.NoError(t, c.AssignResponsible(ctx, refs[0], "u-bob"))
	assert.Equal(t, 2, sb.Requests("GET /v3/contacts/501"), "a ChatRef without what ChatsOfClient read is read again")
	ct, _ := sb.WazzupContact("501")
	assert.Equal(t, "u-bob", ct.ResponsibleUserID)
	assert.Len(t, ct.ContactData, 2, "the contact is written back whole")
	assert.Equal(t, "https://acme.example/contacts/501", ct.URI)
	assert.Equal(t, []sandbox.Assignment{{Platform: "wazzup", ID: "501", User: "u-bob", By: "api", At: sb.Assignments()[0].At}}, sb.Assignments())

	// A ChatRef as ChatsOfClient returns it carries the contact it read: one GET per change.
	refs, err = c.ChatsOfClient(ctx, chatbridge.Client{ContactIDs: []int64{501}})
	require.NoError(t, err)
	gets := sb.Requests("GET /v3/contacts/501")
	require.NoError(t, c.AssignResponsible(ctx, refs[0], "u-ann"))
	assert.Equal(t, gets, sb.Requests("GET /v3/contacts/501"), "the assignment reused the contact ChatsOfClient read")
	ct, _ = sb.WazzupContact("501")
	assert.Equal(t, "u-ann", ct.ResponsibleUserID)
	assert.Len(t, ct.ContactData, 2, "the contact is written back whole")
	require.NoError(t, c.AssignResponsible(ctx, refs[0], "u-bob"))

	err = c.AssignResponsible(ctx, refs[0], "u-nobody")
	assert.ErrorIs(t, err, chatbridge.ErrRejected, "Wazzup refuses an unknown user")
	err = c.AssignResponsible(ctx, chatbridge.ChatRef{ID: "404"}, "u-bob")
	assert.ErrorIs(t, err, chatbridge.ErrNotFound)

	users, err := c.Users(ctx)
	require.NoError(t, err)
	assert.Equal(t, []chatbridge.ChatUser{{ID: "u-ann", Name: "Ann"}, {ID: "u-bob", Name: "Bob"}}, users, "sorted by name")

	require.NoError(t, sb.Fail("GET", "/v3/users", 429, 1))
	_, err = c.Users(ctx)
	assert.ErrorIs(t, err, chatbridge.ErrRateLimited)
	require.NoError(t, sb.Fail("", "", 502, 1))
	_, err = c.Users(ctx)
	assert.ErrorIs(t, err, chatbridge.ErrUnavailable)

	bad, err := wazzup.New(wazzup.Options{APIURL: srv.URL, APIKey: "wrong", CRMKey: crmKey})
	require.NoError(t, err)
	_, err = bad.Users(ctx)
	assert.ErrorIs(t, err, chatbridge.ErrUnauthorized)
}

func TestUsersPages(t *testing.T) {
	var users []sandbox.WazzupUser
	for i := range 230 {
		users = append(users, sandbox.WazzupUser{ID: fmt.Sprintf("u%03d", i), Name: fmt.Sprintf("User %03d", i)})
	}
	sb := sandbox.New(sandbox.Seed{Wazzup: sandbox.WazzupSeed{Users: users}})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	got, err := newClient(t, srv.URL).Users(context.Background())
	require.NoError(t, err)
	assert.Len(t, got, 230)
	assert.Equal(t, 3, sb.Requests("GET /v3/users"))
}

func TestSetWebhooks(t *testing.T) {
	var got []string
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := newClient(t, "http://sandbox.invalid")
		events, err := c.ParseWebhook(r)
		got = append(got, fmt.Sprint(len(events), err))
		if err != nil {
			w.WriteHeader(httpapi.ChatWebhookStatus(err))
		}
	}))
	defer hooks.Close()
	sb := sandbox.New(sandbox.Seed{Wazzup: sandbox.WazzupSeed{CRMKey: crmKey}})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	c := newClient(t, srv.URL)
	subs := wazzup.Subscriptions{MessagesAndStatuses: true, ContactsAndDealsCreation: true}
	require.NoError(t, c.SetWebhooks(context.Background(), hooks.URL+"/v1/chat/wazzup", subs))
	assert.Equal(t, []string{"0 <nil>"}, got, "Wazzup's test delivery was accepted")
	uri, s := sb.WazzupSubscriptions()
	assert.Equal(t, hooks.URL+"/v1/chat/wazzup", uri)
	assert.Equal(t, map[string]bool{"messagesAndStatuses": true, "contactsAndDealsCreation": true, "channelsUpdates": false, "templateStatus": false}, s)

	err := c.SetWebhooks(context.Background(), "https://x.example/"+strings.Repeat("a", 200), subs)
	assert.ErrorIs(t, err, chatbridge.ErrRejected)
	// A receiver that refuses the test delivery is refused by Wazzup.
	wrong := sandbox.New(sandbox.Seed{Wazzup: sandbox.WazzupSeed{CRMKey: "another-key"}})
	srv2 := httptest.NewServer(wrong)
	defer srv2.Close()
	err = newClient(t, srv2.URL).SetWebhooks(context.Background(), hooks.URL+"/v1/chat/wazzup", subs)
	assert.ErrorIs(t, err, chatbridge.ErrRejected)
}

func TestNewChecksOptions(t *testing.T) {
	inboundOnly, err := wazzup.New(wazzup.Options{CRMKey: crmKey})
	require.NoError(t, err, "webhooks need no API key")
	_, err = inboundOnly.Users(context.Background())
	assert.ErrorIs(t, err, chatbridge.ErrUnauthorized)
	_, err = wazzup.New(wazzup.Options{APIKey: "k"})
	assert.Error(t, err)
	_, err = wazzup.New(wazzup.Options{APIKey: "k", CRMKey: crmKey, APIURL: "api.wazzup"})
	assert.Error(t, err)
	c, err := wazzup.New(wazzup.Options{APIKey: "k", CRMKey: crmKey})
	require.NoError(t, err)
	assert.Equal(t, chatbridge.Wazzup, c.Name())
}

// FuzzParseWebhook: any body parses to events or an error wrapping ErrBadWebhook, never a
// panic; events always carry an id, the platform and a kind.
func FuzzParseWebhook(f *testing.F) {
	for _, s := range []string{
		`{"test": true}`,
		`{"messages": [{"messageId": "m1", "dateTime": "2026-03-02T09:59:58.120Z", "chatType": "whatsapp", "chatId": "79161234567", "isEcho": false, "text": "Hi"}]}`,
		`{"createContact": {"responsibleUserId": "u", "name": "A", "contactData": [{"chatType": "whatsapp", "chatId": "7916"}]}}`,
		`{"contacts": [{"id": "1", "responsibleUserId": "u", "contactData": [{"chatType": "telegram", "phone": "+7 (916) 123"}]}]}`,
		`{"createDeal": {"responsibleUserId": "u", "contacts": ["1"]}}`,
		`{"messages": [{"messageId": "", "chatType": ""}]}`,
		`null`, `{}`, ``, `{"messages": null}`, `{"contacts": [null]}`,
	} {
		f.Add(s)
	}
	c := newClient(f, "http://sandbox.invalid")
	f.Fuzz(func(t *testing.T, body string) {
		events, err := c.ParseWebhook(webhook(body, "Bearer "+crmKey))
		if err != nil {
			require.ErrorIs(t, err, chatbridge.ErrBadWebhook)
			return
		}
		for _, e := range events {
			require.NotEmpty(t, e.ID)
			require.Equal(t, chatbridge.Wazzup, e.Platform)
			require.NotEmpty(t, e.Kind)
			_, err := e.QueueEvent()
			require.NoError(t, err)
		}
	})
}
