package chatapp_test

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
	"github.com/crmlink/crmlink/chatbridge/chatapp"
	"github.com/crmlink/crmlink/chatbridge/sandbox"
	"github.com/crmlink/crmlink/crm"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const secret = "chatapp-secret-0123456789"

var licenses = []chatbridge.License{{ID: "1001", Messenger: "grWhatsApp"}, {ID: "1002", Messenger: "grWhatsApp"}}

func newClient(t testing.TB, apiURL string) *chatapp.Client {
	t.Helper()
	c, err := chatapp.New(chatapp.Options{APIURL: apiURL, Credentials: chatapp.Credentials{Email: sandbox.DefaultChatAppEmail, Password: sandbox.DefaultChatAppPassword, AppID: sandbox.DefaultChatAppAppID}, WebhookSecret: secret,
		Licenses: licenses, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	return c
}

func webhook(path, body string) *http.Request {
	return httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
}

func TestParseWebhook(t *testing.T) {
	c := newClient(t, "http://sandbox.invalid")
	ref := "1001/grWhatsApp/79161234567"
	chat := chatbridge.ChatRef{Platform: chatbridge.ChatApp, ID: ref, ChatType: "grWhatsApp", ChatID: "79161234567", Name: "Anna", Responsible: "8"}
	tests := []struct {
		name string
		body string
		want []chatbridge.Event
	}{
		{
			name: "responsible changed",
			body: `{"events": [{"id": "e1", "type": "chatResponsible", "licenseId": 1001, "messengerType": "grWhatsApp", "time": 1772445600,
				"chat": {"id": "79161234567", "name": "Anna", "phone": "79161234567", "responsible": {"id": 8, "name": "Bob"}}}]}`,
			want: []chatbridge.Event{{ID: "chatapp:e1", Platform: chatbridge.ChatApp, Kind: chatbridge.EventResponsibleAssigned,
				At: time.Unix(1772445600, 0).UTC(), Chat: chat, Phone: "+79161234567", RawPhone: "79161234567",
				ChatUser: "8", ChatUserName: "Bob", ClientName: "Anna"}},
		},
		{
			name: "one event without the envelope, string ids, no time",
			body: `{"type": "chatResponsible", "licenseId": "1001", "messengerType": "grWhatsApp",
				"chat": {"id": "79161234567", "name": "Anna", "responsible": {"id": "8"}}}`,
			want: []chatbridge.Event{{ID: chatbridge.DigestID(chatbridge.ChatApp, "chatResponsible", ref, "8", fmt.Sprint(t0.UnixMilli())),
				Platform: chatbridge.ChatApp, Kind: chatbridge.EventResponsibleAssigned, At: t0, Chat: chat,
				Phone: "+79161234567", RawPhone: "79161234567", ChatUser: "8", ClientName: "Anna"}},
		},
		{
			name: "messages, a chat created, and events crmlink does not use",
			body: `{"events": [
				{"type": "message", "licenseId": 1001, "messengerType": "grWhatsApp", "time": 1772445600,
				 "chat": {"id": "79161234567", "name": "Anna", "responsible": {"id": 8}}, "message": {"id": "m1", "text": "Hi", "type": "text", "fromMe": false}},
				{"type": "message", "licenseId": 1001, "messengerType": "grWhatsApp", "time": 1772445601,
				 "chat": {"id": "79161234567", "name": "Anna", "responsible": {"id": 8}}, "message": {"id": 77, "text": "Hello!", "fromMe": true, "author": {"id": 8, "name": "Bob"}}},
				{"type": "messageStatus", "licenseId": 1001, "messengerType": "grWhatsApp", "chat": {"id": "79161234567"}},
				{"type": "chatTag", "licenseId": 1001, "messengerType": "grWhatsApp", "chat": {"id": "79161234567"}},
				{"type": "chatCreated", "licenseId": 1001, "messengerType": "grWhatsApp", "time": 1772445602,
				 "chat": {"id": "79161234567", "name": "Anna", "responsible": {"id": 8}}}]}`,
			want: []chatbridge.Event{
				{ID: "chatapp:msg:" + ref + ":m1", Platform: chatbridge.ChatApp, Kind: chatbridge.EventMessage, At: time.Unix(1772445600, 0).UTC(),
					Chat: chat, Phone: "+79161234567", RawPhone: "79161234567", ClientName: "Anna",
					Message: &chatbridge.Message{ID: "m1", Text: "Hi", Inbound: true, Type: "text"}},
				{ID: "chatapp:msg:" + ref + ":77", Platform: chatbridge.ChatApp, Kind: chatbridge.EventMessage, At: time.Unix(1772445601, 0).UTC(),
					Chat: chat, Phone: "+79161234567", RawPhone: "79161234567", ClientName: "Anna", ChatUser: "8", ChatUserName: "Bob",
					Message: &chatbridge.Message{ID: "77", Text: "Hello!", Inbound: false}},
				{ID: chatbridge.DigestID(chatbridge.ChatApp, "chatCreated", ref, "", fmt.Sprint(int64(1772445602000))),
					Platform: chatbridge.ChatApp, Kind: chatbridge.EventDialogOpened, At: time.Unix(1772445602, 0).UTC(),
					Chat: chat, Phone: "+79161234567", RawPhone: "79161234567", ClientName: "Anna"},
			},
		},
		{
			name: "a Telegram chat has no phone",
			body: `{"type": "chatResponsible", "licenseId": 5, "messengerType": "telegram", "time": 1772445600, "chat": {"id": "tg-42", "responsible": {"id": 9}}}`,
			want: []chatbridge.Event{{ID: chatbridge.DigestID(chatbridge.ChatApp, "chatResponsible", "5/telegram/tg-42", "9", fmt.Sprint(int64(1772445600000))),
				Platform: chatbridge.ChatApp, Kind: chatbridge.EventResponsibleAssigned, At: time.Unix(1772445600, 0).UTC(),
				Chat:     chatbridge.ChatRef{Platform: chatbridge.ChatApp, ID: "5/telegram/tg-42", ChatType: "telegram", ChatID: "tg-42", Responsible: "9"},
				ChatUser: "9"}},
		},
		{name: "nothing used", body: `{"events": []}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.ParseWebhook(webhook("/v1/chat/chatapp/"+secret, tt.body))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseWebhookRefuses(t *testing.T) {
	c := newClient(t, "http://sandbox.invalid")
	ok := "/v1/chat/chatapp/" + secret
	tests := []struct {
		name, path, body string
		want             error
	}{
		{"wrong secret", "/v1/chat/chatapp/guess", `{"events": []}`, chatbridge.ErrUnauthorized},
		{"no secret", "/v1/chat/chatapp/", `{"events": []}`, chatbridge.ErrUnauthorized},
		{"not JSON", ok, `type=message`, chatbridge.ErrBadWebhook},
		{"an array", ok, `[{"type": "message"}]`, chatbridge.ErrBadWebhook},
		{"event without type", ok, `{"events": [{"licenseId": 1}]}`, chatbridge.ErrBadWebhook},
		{"message without message", ok, `{"type": "message", "licenseId": 1, "messengerType": "wa", "chat": {"id": "1"}}`, chatbridge.ErrBadWebhook},
		{"no chat id", ok, `{"type": "chatResponsible", "licenseId": 1, "messengerType": "wa", "chat": {}}`, chatbridge.ErrBadWebhook},
		{"slash in license", ok, `{"type": "chatResponsible", "licenseId": "1/2", "messengerType": "wa", "chat": {"id": "1"}}`, chatbridge.ErrBadWebhook},
		{"fractional id", ok, `{"type": "chatResponsible", "licenseId": 1.5, "messengerType": "wa", "chat": {"id": "1"}}`, chatbridge.ErrBadWebhook},
		{"bad time", ok, `{"type": "chatResponsible", "licenseId": 1, "messengerType": "wa", "time": -5, "chat": {"id": "1"}}`, chatbridge.ErrBadWebhook},
		{"events not a list", ok, `{"events": {"type": "message"}}`, chatbridge.ErrBadWebhook},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ParseWebhook(webhook(tt.path, tt.body))
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

func TestAPI(t *testing.T) {
	sb := sandbox.New(sandbox.Seed{ChatApp: sandbox.ChatAppSeed{
		Users: []sandbox.ChatAppUser{{ID: "7", Name: "Ann"}, {ID: "8", Name: "Bob"}},
		Chats: []sandbox.ChatAppChat{
			{License: "1001", Messenger: "grWhatsApp", ID: "79161234567", Name: "Anna", Phone: "79161234567", Responsible: "7"},
			{License: "1002", Messenger: "grWhatsApp", ID: "79161234567", Name: "Anna", Phone: "79161234567"},
		},
	}}, sandbox.WithAPIEcho(false))
	srv := httptest.NewServer(sb)
	defer srv.Close()
	c := newClient(t, srv.URL)
	ctx := context.Background()

	refs, err := c.ChatsOfClient(ctx, chatbridge.Client{Phones: []crm.Phone{"+79161234567", "+79035550000"}, ContactIDs: []int64{501}})
	require.NoError(t, err)
	assert.Equal(t, []chatbridge.ChatRef{
		{Platform: chatbridge.ChatApp, ID: "1001/grWhatsApp/79161234567", ChatType: "grWhatsApp", ChatID: "79161234567", Name: "Anna", Responsible: "7"},
		{Platform: chatbridge.ChatApp, ID: "1002/grWhatsApp/79161234567", ChatType: "grWhatsApp", ChatID: "79161234567", Name: "Anna"},
	}, refs)
	assert.Equal(t, 4, sb.Requests("/v1/licenses/1001/messengers/grWhatsApp/chats/79161234567")+
		sb.Requests("/v1/licenses/1002/messengers/grWhatsApp/chats/79161234567")+
		sb.Requests("/v1/licenses/1001/messengers/grWhatsApp/chats/79035550000")+
		sb.Requests("/v1/licenses/1002/messengers/grWhatsApp/chats/79035550000"), "each number in each license")

	for _, r := range refs {
		require.NoError(t, c.AssignResponsible(ctx, r, "8"))
	}
	assert.Equal(t, map[string]string{"chatapp:1001/grWhatsApp/79161234567": "8", "chatapp:1002/grWhatsApp/79161234567": "8"},
		sb.Responsible("+7 916 123-45-67"))
	assert.Equal(t, 2, sb.Requests("PUT /v1/licenses/1001/messengers/grWhatsApp/chats/79161234567/responsible")+
		sb.Requests("PUT /v1/licenses/1002/messengers/grWhatsApp/chats/79161234567/responsible"))

	assert.ErrorIs(t, c.AssignResponsible(ctx, refs[0], "404"), chatbridge.ErrRejected)
	assert.ErrorIs(t, c.AssignResponsible(ctx, chatbridge.ChatRef{ID: "1001/grWhatsApp/700"}, "8"), chatbridge.ErrNotFound)
	assert.ErrorIs(t, c.AssignResponsible(ctx, chatbridge.ChatRef{ID: "garbage"}, "8"), chatbridge.ErrRejected)

	users, err := c.Users(ctx)
	require.NoError(t, err)
	assert.Equal(t, []chatbridge.ChatUser{{ID: "7", Name: "Ann"}, {ID: "8", Name: "Bob"}}, users)

	bad, err := chatapp.New(chatapp.Options{APIURL: srv.URL, WebhookSecret: secret, Key: "chat.platforms[1]",
		Credentials: chatapp.Credentials{Email: sandbox.DefaultChatAppEmail, Password: "wrong", AppID: sandbox.DefaultChatAppAppID}})
	require.NoError(t, err)
	_, err = bad.Users(ctx)
	assert.ErrorIs(t, err, chatbridge.ErrUnauthorized)
	assert.ErrorIs(t, err, chatapp.ErrCredentials)
	assert.ErrorContains(t, err, "chat.platforms[1].password")
}

// ChatApp reports a reassignment made through the API like a person's; crmlink's guard,
// not the adapter, tells them apart. The adapter reads the sandbox's events.
func TestSandboxEventsParse(t *testing.T) {
	var got []chatbridge.Event
	c := newClient(t, "http://sandbox.invalid")
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		events, err := c.ParseWebhook(r)
		require.NoError(t, err)
		got = append(got, events...)
	}))
	defer hooks.Close()
	sb := sandbox.New(sandbox.Seed{ChatApp: sandbox.ChatAppSeed{WebhookURL: hooks.URL + "/v1/chat/chatapp/" + secret,
		Users: []sandbox.ChatAppUser{{ID: "7", Name: "Ann"}, {ID: "8", Name: "Bob"}},
		Chats: []sandbox.ChatAppChat{{License: "1001", Messenger: "grWhatsApp", ID: "79161234567", Responsible: "7"}},
	}}, sandbox.WithClock(func() time.Time { return t0 }))
	srv := httptest.NewServer(sb)
	defer srv.Close()
	api := newClient(t, srv.URL)
	ctx := context.Background()

	d, err := sb.ChatAppAssign(ctx, "1001/grWhatsApp/79161234567", "8")
	require.NoError(t, err)
	assert.Equal(t, 200, d.Status)
	require.NoError(t, api.AssignResponsible(ctx, chatbridge.ChatRef{ID: "1001/grWhatsApp/79161234567"}, "7"))
	_, err = sb.ChatAppMessage(ctx, "1001/grWhatsApp/79161234567", "m1", "hi", true, "")
	require.NoError(t, err)

	require.Len(t, got, 3)
	assert.Equal(t, []string{"8", "7", ""}, []string{got[0].ChatUser, got[1].ChatUser, got[2].ChatUser})
	assert.Equal(t, chatbridge.EventMessage, got[2].Kind)
	assert.Equal(t, crm.Phone("+79161234567"), got[0].Phone)
	assert.Equal(t, t0, got[0].At)
}

func TestNewChecksOptions(t *testing.T) {
	inboundOnly, err := chatapp.New(chatapp.Options{WebhookSecret: secret})
	require.NoError(t, err, "webhooks need no token")
	_, err = inboundOnly.Users(context.Background())
	assert.ErrorIs(t, err, chatbridge.ErrUnauthorized)
	_, err = chatapp.New(chatapp.Options{})
	assert.Error(t, err)
	_, err = chatapp.New(chatapp.Options{WebhookSecret: secret, Licenses: []chatbridge.License{{ID: "1"}}})
	assert.Error(t, err)
	c, err := chatapp.New(chatapp.Options{WebhookSecret: secret})
	require.NoError(t, err)
	assert.Equal(t, chatbridge.ChatApp, c.Name())
}

func FuzzParseWebhook(f *testing.F) {
	for _, s := range []string{
		`{"events": [{"id": "e1", "type": "chatResponsible", "licenseId": 1001, "messengerType": "grWhatsApp", "time": 1772445600, "chat": {"id": "79161234567", "responsible": {"id": 8}}}]}`,
		`{"type": "message", "licenseId": "1", "messengerType": "telegram", "chat": {"id": "x"}, "message": {"id": 1, "fromMe": true, "author": {"id": null}}}`,
		`{"type": "chatCreated", "licenseId": 1, "messengerType": "wa", "chat": {"id": "1", "phone": "+1 (555) 0100"}}`,
		`{"events": null}`, `{}`, `null`, ``, `{"licenseId": 1e400}`, `{"events": [null]}`,
	} {
		f.Add(s)
	}
	c := newClient(f, "http://sandbox.invalid")
	f.Fuzz(func(t *testing.T, body string) {
		events, err := c.ParseWebhook(webhook("/v1/chat/chatapp/"+secret, body))
		if err != nil {
			require.ErrorIs(t, err, chatbridge.ErrBadWebhook)
			return
		}
		for _, e := range events {
			require.NotEmpty(t, e.ID)
			require.Equal(t, chatbridge.ChatApp, e.Platform)
			_, err := e.QueueEvent()
			require.NoError(t, err)
		}
	})
}
