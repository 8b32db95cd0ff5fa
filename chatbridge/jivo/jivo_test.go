package jivo_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/jivo"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const secret = "jivo-secret-0123456789abc"

func newReader(t testing.TB) *jivo.Webhooks {
	t.Helper()
	w, err := jivo.New(jivo.Options{Secret: secret, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	return w
}

func webhook(path, body string) *http.Request {
	return httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
}

const chatAccepted = `{
  "event_name": "chat_accepted",
  "chat_id": 4242,
  "widget_id": "abc123",
  "visitor": {"name": "Anna", "email": " anna@example.com ", "phone": "8 (916) 123-45-67", "number": "1580",
              "description": "wants a quote", "social": {}, "chats_count": 3},
  "agent": {"id": 4410, "name": "Bob", "email": "bob@acme.example", "phone": "+74950000001"},
  "department": {"id": 12, "name": "Sales"},
  "session": {"geoip": {"country": "Russia", "region": "Moscow", "city": "Moscow", "country_code": "RU"},
              "utm": "source=google|medium=cpc|campaign=spring%20sale|term=sofa",
              "utm_json": {"source": "google", "campaign": "spring", "content": "banner"},
              "ip_addr": "203.0.113.5", "user_agent": "Mozilla/5.0"},
  "page": {"url": "https://shop.example/sofas?utm_source=google", "title": "Sofas"},
  "analytics": {}
}`

func TestParseWebhook(t *testing.T) {
	w := newReader(t)
	origin := &chatbridge.Origin{WidgetID: "abc123", Department: chatbridge.Department{ID: "12", Name: "Sales"},
		UTM:     chatbridge.UTM{Source: "google", Medium: "cpc", Campaign: "spring", Content: "banner", Term: "sofa"},
		UTMRaw:  "source=google|medium=cpc|campaign=spring%20sale|term=sofa",
		PageURL: "https://shop.example/sofas?utm_source=google", PageTitle: "Sofas", IP: "203.0.113.5", UserAgent: "Mozilla/5.0",
		Country: "Russia", Region: "Moscow", City: "Moscow"}
	visitor := &chatbridge.Visitor{Name: "Anna", Email: "anna@example.com", Phone: "8 (916) 123-45-67", Number: "1580", Description: "wants a quote", ChatsCount: 3}
	tests := []struct {
		name string
		body string
		want []chatbridge.Event
	}{
		{
			name: "chat accepted: everything lead rules use",
			body: chatAccepted,
			want: []chatbridge.Event{{ID: "jivo:chat_accepted:4242", Platform: chatbridge.Jivo, Kind: chatbridge.EventChatAccepted, At: t0,
				Chat: chatbridge.ChatRef{Platform: chatbridge.Jivo, ID: "4242"}, Phone: "+79161234567", RawPhone: "8 (916) 123-45-67",
				ChatUser: "4410", ChatUserName: "Bob", ClientName: "Anna", Visitor: visitor, Origin: origin}},
		},
		{
			name: "chat finished with agents[] and the utm string only",
			body: `{"event_name": "chat_finished", "chat_id": "4242", "widget_id": "abc123", "visitor": {"name": "Anna", "number": "+7 916 123 45 67"},
				"agents": [{"id": "4410", "name": "Bob"}], "session": {"utm": "utm_source=yandex|utm_medium=organic"}, "page": {"url": "https://shop.example/"}}`,
			want: []chatbridge.Event{{ID: "jivo:chat_finished:4242", Platform: chatbridge.Jivo, Kind: chatbridge.EventChatFinished, At: t0,
				Chat: chatbridge.ChatRef{Platform: chatbridge.Jivo, ID: "4242"}, Phone: "+79161234567", RawPhone: "+7 916 123 45 67",
				ChatUser: "4410", ChatUserName: "Bob", ClientName: "Anna", Visitor: &chatbridge.Visitor{Name: "Anna", Number: "+7 916 123 45 67"},
				Origin: &chatbridge.Origin{WidgetID: "abc123", UTM: chatbridge.UTM{Source: "yandex", Medium: "organic"},
					UTMRaw: "utm_source=yandex|utm_medium=organic", PageURL: "https://shop.example/"}}},
		},
		{
			name: "offline message with a phone and an email",
			body: `{"event_name": "offline_message", "widget_id": "abc123", "offline_message_id": 99, "message": "Call me back please",
				"visitor": {"name": "Oleg", "email": "oleg@example.com", "phone": "+79035550000"}, "department": {"id": "7", "name": "Service"},
				"page": {"url": "https://shop.example/contacts", "title": "Contacts"}}`,
			want: []chatbridge.Event{{ID: "jivo:offline:99", Platform: chatbridge.Jivo, Kind: chatbridge.EventOfflineMessage, At: t0,
				Chat: chatbridge.ChatRef{Platform: chatbridge.Jivo}, Phone: "+79035550000", RawPhone: "+79035550000", ClientName: "Oleg",
				Visitor: &chatbridge.Visitor{Name: "Oleg", Email: "oleg@example.com", Phone: "+79035550000"},
				Origin: &chatbridge.Origin{WidgetID: "abc123", Department: chatbridge.Department{ID: "7", Name: "Service"},
					PageURL: "https://shop.example/contacts", PageTitle: "Contacts"},
				Message: &chatbridge.Message{ID: "99", Text: "Call me back please", Inbound: true}}},
		},
		{
			name: "an unreadable phone is kept raw",
			body: `{"event_name": "offline_message", "message": "hi", "visitor": {"email": "x@example.com", "phone": "call me"}}`,
			want: []chatbridge.Event{{ID: chatbridge.DigestID(chatbridge.Jivo, "offline_message", "", "call me", "x@example.com", "hi"),
				Platform: chatbridge.Jivo, Kind: chatbridge.EventOfflineMessage, At: t0, Chat: chatbridge.ChatRef{Platform: chatbridge.Jivo},
				RawPhone: "call me", Visitor: &chatbridge.Visitor{Email: "x@example.com", Phone: "call me"}, Origin: &chatbridge.Origin{},
				Message: &chatbridge.Message{Text: "hi", Inbound: true}}},
		},
		{name: "events crmlink does not use", body: `{"event_name": "chat_updated", "chat_id": 1}`},
		{name: "call event", body: `{"event_name": "call_event", "call": {"type": "callback", "phone": "+79161234567"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := w.ParseWebhook(webhook("/v1/chat/jivo/"+secret, tt.body))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseWebhookRefuses(t *testing.T) {
	w := newReader(t)
	ok := "/v1/chat/jivo/" + secret
	tests := []struct {
		name, path, body string
		want             error
	}{
		{"wrong secret", "/v1/chat/jivo/guess", chatAccepted, chatbridge.ErrUnauthorized},
		{"secret as a prefix", "/v1/chat/jivo/" + secret + "x", chatAccepted, chatbridge.ErrUnauthorized},
		{"not JSON", ok, `event_name=chat_accepted`, chatbridge.ErrBadWebhook},
		{"no event_name", ok, `{"chat_id": 1}`, chatbridge.ErrBadWebhook},
		{"chat without chat_id", ok, `{"event_name": "chat_accepted"}`, chatbridge.ErrBadWebhook},
		{"visitor not an object", ok, `{"event_name": "chat_accepted", "chat_id": 1, "visitor": "Anna"}`, chatbridge.ErrBadWebhook},
		{"two values", ok, `{"event_name": "x"} {}`, chatbridge.ErrBadWebhook},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := w.ParseWebhook(webhook(tt.path, tt.body))
			assert.ErrorIs(t, err, tt.want)
		})
	}
	_, err := w.ParseWebhook(httptest.NewRequest(http.MethodGet, ok, nil))
	assert.ErrorIs(t, err, chatbridge.ErrBadWebhook)
	_, err = jivo.New(jivo.Options{})
	assert.Error(t, err)
	assert.Equal(t, chatbridge.Jivo, w.Name())
}

func FuzzParseWebhook(f *testing.F) {
	for _, s := range []string{
		chatAccepted,
		`{"event_name": "chat_finished", "chat_id": "1", "agents": [{"id": null}], "session": {"utm": "source=%zz|=|medium"}}`,
		`{"event_name": "offline_message", "visitor": {"phone": "+", "number": "0"}}`,
		`{"event_name": "chat_accepted", "chat_id": 1e3}`,
		`{}`, `null`, ``, `[]`,
	} {
		f.Add(s)
	}
	w := newReader(f)
	f.Fuzz(func(t *testing.T, body string) {
		events, err := w.ParseWebhook(webhook("/v1/chat/jivo/"+secret, body))
		if err != nil {
			require.ErrorIs(t, err, chatbridge.ErrBadWebhook)
			return
		}
		for _, e := range events {
			require.NotEmpty(t, e.ID)
			_, err := e.QueueEvent()
			require.NoError(t, err)
		}
	})
}
