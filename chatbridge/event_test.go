package chatbridge_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
)

func TestEventQueueRoundTrip(t *testing.T) {
	e := chatbridge.Event{
		ID: "jivo:chat_accepted:42", Platform: chatbridge.Jivo, Kind: chatbridge.EventChatAccepted, At: t0,
		Chat: chatbridge.ChatRef{Platform: chatbridge.Jivo, ID: "42"}, Phone: clientPhone, RawPhone: "8 916 123-45-67",
		ChatUser: "4410", Visitor: &chatbridge.Visitor{Name: "Anna", Email: "anna@example.com", ChatsCount: 2},
		Origin: &chatbridge.Origin{WidgetID: "w1", Department: chatbridge.Department{ID: "3", Name: "Sales"},
			UTM: chatbridge.UTM{Source: "google", Medium: "cpc"}, PageURL: "https://shop.example/cart"},
	}
	q, err := e.QueueEvent()
	require.NoError(t, err)
	assert.Equal(t, "jivo:chat_accepted:42", q.ID)
	assert.Equal(t, events.KindChat, q.Kind)
	back, err := chatbridge.ChatEvents.Decode(q)
	require.NoError(t, err)
	assert.Equal(t, e, back)
	assert.Equal(t, "phone:"+string(clientPhone), q.Key)

	_, err = chatbridge.Event{ID: "x"}.QueueEvent()
	assert.Error(t, err)
	_, err = chatbridge.ChatEvents.Decode(events.Envelope{ID: "x", Kind: events.KindCRMChange})
	assert.Error(t, err)
	_, err = chatbridge.ChatEvents.Decode(events.Envelope{ID: "x", Kind: events.KindChat, Payload: []byte(`{}`)})
	assert.Error(t, err, "an event without id, platform and kind")

	noPhone := chatbridge.Event{ID: "a", Platform: chatbridge.ChatApp, Kind: chatbridge.EventMessage, Chat: chatbridge.ChatRef{Platform: chatbridge.ChatApp, ID: "1/wa/x"}}
	q, err = noPhone.QueueEvent()
	require.NoError(t, err)
	assert.Equal(t, "chat:chatapp:1/wa/x", q.Key)
	ch, err := events.CRMChanges.Encode(events.CRMChange{Entity: crm.EntityLead, ID: 1})
	require.NoError(t, err)
	assert.Empty(t, ch.Key)
}

func TestDigestID(t *testing.T) {
	a := chatbridge.DigestID(chatbridge.Wazzup, "createContact", "u1", "whatsapp")
	assert.Equal(t, a, chatbridge.DigestID(chatbridge.Wazzup, "createContact", "u1", "whatsapp"))
	assert.True(t, strings.HasPrefix(a, "wazzup:"))
	assert.NotEqual(t, a, chatbridge.DigestID(chatbridge.Wazzup, "createContactu1", "", "whatsapp"), "parts are length-prefixed")
}

func TestWebhookSecrets(t *testing.T) {
	req := func(path, auth string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, path, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return r
	}
	assert.NoError(t, chatbridge.CheckBearer(req("/", "Bearer s3cret-s3cret"), "s3cret-s3cret"))
	assert.ErrorIs(t, chatbridge.CheckBearer(req("/", "Bearer guess"), "s3cret-s3cret"), chatbridge.ErrUnauthorized)
	assert.ErrorIs(t, chatbridge.CheckBearer(req("/", "s3cret-s3cret"), "s3cret-s3cret"), chatbridge.ErrUnauthorized)
	assert.ErrorIs(t, chatbridge.CheckBearer(req("/", "Bearer "), ""), chatbridge.ErrUnauthorized, "no secret configured refuses all")

	assert.NoError(t, chatbridge.CheckPathSecret(req("/v1/chat/jivo/s3cret", ""), "s3cret"))
	assert.NoError(t, chatbridge.CheckPathSecret(req("/v1/chat/jivo/s3cret/", ""), "s3cret"))
	assert.ErrorIs(t, chatbridge.CheckPathSecret(req("/v1/chat/jivo/guess", ""), "s3cret"), chatbridge.ErrUnauthorized)
	assert.ErrorIs(t, chatbridge.CheckPathSecret(req("/v1/chat/jivo/", ""), ""), chatbridge.ErrUnauthorized)

	// With a {secret} route the path value is what counts.
	mux := http.NewServeMux()
	var got error
	mux.HandleFunc("POST /v1/chat/chatapp/{secret}/events", func(_ http.ResponseWriter, r *http.Request) {
		got = chatbridge.CheckPathSecret(r, "s3cret")
	})
	mux.ServeHTTP(httptest.NewRecorder(), req("/v1/chat/chatapp/s3cret/events", ""))
	assert.NoError(t, got)

}

func TestMessengerPhone(t *testing.T) {
	tests := []struct {
		raw, wantPhone, wantRaw string
	}{
		{"79161234567", "+79161234567", "79161234567"}, // WhatsApp chat id: international digits
		{" +7 (916) 123-45-67 ", "+79161234567", "+7 (916) 123-45-67"},
		{"8 916 123-45-67", "+79161234567", "8 916 123-45-67"}, // national, read in the region
		{"not a number", "", "not a number"},
		{"   ", "", ""},
	}
	for _, tt := range tests {
		p, raw := chatbridge.MessengerPhone(tt.raw, "RU")
		if string(p) != tt.wantPhone || raw != tt.wantRaw {
			t.Errorf("MessengerPhone(%q) = %q, %q; want %q, %q", tt.raw, p, raw, tt.wantPhone, tt.wantRaw)
		}
	}
}
