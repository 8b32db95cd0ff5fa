package sandbox_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge/sandbox"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func seed(hooks string) sandbox.Seed {
	return sandbox.Seed{
		Wazzup: sandbox.WazzupSeed{WebhookURL: hooks + "/wazzup", Users: []sandbox.WazzupUser{{ID: "u1", Name: "Ann"}, {ID: "u2", Name: "Bob"}},
			Contacts: []sandbox.WazzupContact{{ID: "501", ResponsibleUserID: "u1", Name: "Anna",
				ContactData: []sandbox.WazzupContactData{{ChatType: "whatsapp", ChatID: "79161234567"}}}}},
		ChatApp: sandbox.ChatAppSeed{WebhookURL: hooks + "/chatapp/secret", Users: []sandbox.ChatAppUser{{ID: "7", Name: "Ann"}, {ID: "8", Name: "Bob"}},
			Chats: []sandbox.ChatAppChat{{License: "1001", Messenger: "grWhatsApp", ID: "79161234567", Phone: "79161234567", Responsible: "7"}}},
	}
}

// recorder is a webhook receiver that keeps what it got.
type recorder struct {
	mu    sync.Mutex
	calls []string // "path auth body"
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.calls = append(r.calls, req.URL.Path+" "+req.Header.Get("Authorization")+" "+string(b))
	r.mu.Unlock()
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func do(t *testing.T, srv *httptest.Server, method, path, auth, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func TestWazzupAPI(t *testing.T) {
	sb := sandbox.New(seed("http://hooks.invalid"))
	srv := httptest.NewServer(sb)
	defer srv.Close()
	key := "Bearer " + sandbox.DefaultWazzupAPIKey

	code, body := do(t, srv, "GET", "/v3/users", "Bearer wrong", "")
	assert.Equal(t, 401, code)
	assert.Equal(t, "UNAUTHORIZED", body["error"])

	code, body = do(t, srv, "GET", "/v3/contacts/501", key, "")
	assert.Equal(t, 200, code)
	assert.Equal(t, "u1", body["responsibleUserId"])
	code, body = do(t, srv, "GET", "/v3/contacts/999", key, "")
	assert.Equal(t, 404, code)
	assert.Equal(t, "CONTACT_NOT_FOUND", body["error"])

	code, body = do(t, srv, "POST", "/v3/contacts", key, `[{"id": "502", "responsibleUserId": "u9", "name": "", "contactData": [{"chatType": "fax", "chatId": ""}]}]`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "VALIDATION_ERROR", body["error"])
	assert.Equal(t, []any{map[string]any{"index": 0.0, "fields": []any{"responsibleUserId", "name", "contactData.chatType", "contactData.chatId"}}}, body["data"])

	many := "[" + strings.Repeat(`{"id": "1", "responsibleUserId": "u1", "name": "x", "contactData": [{"chatType": "whatsapp", "chatId": "1"}]},`, 101)
	code, body = do(t, srv, "POST", "/v3/contacts", key, strings.TrimSuffix(many, ",")+"]")
	assert.Equal(t, 400, code)
	assert.Equal(t, "TOO_MACH_ENTITIES", body["error"], "Wazzup's spelling")

	code, _ = do(t, srv, "POST", "/v3/contacts", key, `[{"id": "501", "responsibleUserId": "u2", "name": "Anna", "contactData": [{"chatType": "telegram", "username": "anna"}]}]`)
	assert.Equal(t, 200, code)
	assert.NotContains(t, sb.Responsible("+79161234567"), "wazzup:501", "the contact's WhatsApp account was replaced; the sandbox finds chats by it")
	c, _ := sb.WazzupContact("501")
	assert.Equal(t, "u2", c.ResponsibleUserID)
	code, _ = do(t, srv, "DELETE", "/v3/contacts/501", key, "")
	assert.Equal(t, 404, code)
	assert.Equal(t, 1, sb.Requests("POST /v3/contacts")-2, "three POSTs counted, refused ones included")
}

func TestChatAppAPI(t *testing.T) {
	sb := sandbox.New(seed("http://hooks.invalid"), sandbox.WithAPIEcho(false))
	srv := httptest.NewServer(sb)
	defer srv.Close()
	tok := chatappToken(t, srv)
	chat := "/v1/licenses/1001/messengers/grWhatsApp/chats/79161234567"

	code, body := do(t, srv, "GET", chat, "Bearer "+tok, "")
	assert.Equal(t, 401, code)
	assert.Equal(t, false, body["success"])
	code, body = do(t, srv, "GET", chat, tok, "")
	assert.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"id": "79161234567", "name": "", "phone": "79161234567", "responsible": map[string]any{"id": 7.0, "name": "Ann"}}, body["data"])

	code, _ = do(t, srv, "PUT", chat+"/responsible", tok, `{"userId": "Bob"}`)
	assert.Equal(t, 400, code, "userId is an id")
	code, _ = do(t, srv, "PUT", chat+"/responsible", tok, `{"userId": 99}`)
	assert.Equal(t, 400, code, "not an employee")
	code, _ = do(t, srv, "PUT", "/v1/licenses/1001/messengers/grWhatsApp/chats/700/responsible", tok, `{"userId": 8}`)
	assert.Equal(t, 404, code)
	code, body = do(t, srv, "PUT", chat+"/responsible", tok, `{"userId": 8}`)
	assert.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"id": 8.0, "name": "Bob"}, body["data"].(map[string]any)["responsible"])
	code, _ = do(t, srv, "POST", chat, tok, "")
	assert.Equal(t, 405, code)
	code, _ = do(t, srv, "GET", "/v1/licenses/1001/chats", tok, "")
	assert.Equal(t, 404, code)
	assert.Equal(t, 1, sb.APIAssignments())
}

func TestWebhooksAndControlAPI(t *testing.T) {
	rec := &recorder{}
	hooks := httptest.NewServer(rec)
	defer hooks.Close()
	sb := sandbox.New(seed(hooks.URL), sandbox.WithClock(func() time.Time { return t0 }))
	srv := httptest.NewServer(sb)
	defer srv.Close()

	code, out := do(t, srv, "POST", "/_sandbox/chatapp/assign", "", `{"chat": "1001/grWhatsApp/79161234567", "user": "8"}`)
	assert.Equal(t, 200, code)
	assert.Equal(t, 200.0, out["status"])
	code, _ = do(t, srv, "POST", "/_sandbox/wazzup/reassign", "", `{"contact": "501", "user": "u2"}`)
	assert.Equal(t, 200, code)
	code, _ = do(t, srv, "POST", "/_sandbox/wazzup/new-client", "", `{"chat_type": "whatsapp", "chat_id": "79990001122", "responsible": "u1"}`)
	assert.Equal(t, 200, code)
	code, _ = do(t, srv, "POST", "/_sandbox/chatapp/message", "", `{"chat": "1001/grWhatsApp/79161234567", "message_id": "m1", "text": "hi", "inbound": true}`)
	assert.Equal(t, 200, code)
	code, _ = do(t, srv, "POST", "/_sandbox/wazzup/reassign", "", `{"contact": "404", "user": "u2"}`)
	assert.Equal(t, 404, code)
	code, _ = do(t, srv, "POST", "/_sandbox/chatapp/assign", "", `{"chat": "1001/grWhatsApp/79161234567", "user": "nobody"}`)
	assert.Equal(t, 400, code)

	calls := rec.got()
	require.Len(t, calls, 4)
	assert.Contains(t, calls[0], "/chatapp/secret  {\"events\":[{")
	assert.Contains(t, calls[0], `"type":"chatResponsible"`)
	assert.Contains(t, calls[0], `"licenseId":1001`)
	assert.Contains(t, calls[0], `"responsible":{"id":8,"name":"Bob"}`)
	assert.Contains(t, calls[0], `"time":1772445600`)
	assert.Contains(t, calls[1], "/wazzup Bearer "+sandbox.DefaultWazzupCRMKey+` {"contacts":[{"id":"501","responsibleUserId":"u2"`)
	assert.Contains(t, calls[2], `{"createContact":{`)
	assert.Contains(t, calls[3], `"type":"message"`)

	resp, err := http.Get(srv.URL + "/_sandbox/chats?phone=%2B7%20916%20123-45-67")
	require.NoError(t, err)
	var chats []sandbox.ChatState
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&chats))
	resp.Body.Close()
	assert.Equal(t, []sandbox.ChatState{
		{Platform: "chatapp", ID: "1001/grWhatsApp/79161234567", ChatType: "grWhatsApp", ChatID: "79161234567", Responsible: "8"},
		{Platform: "wazzup", ID: "501", ChatType: "whatsapp", ChatID: "79161234567", Responsible: "u2"},
	}, chats)
	assert.Equal(t, []sandbox.Assignment{
		{Platform: "chatapp", ID: "1001/grWhatsApp/79161234567", User: "8", By: "person", At: t0},
		{Platform: "wazzup", ID: "501", User: "u2", By: "person", At: t0},
	}, sb.Assignments())

	tok := chatappToken(t, srv)
	code, _ = do(t, srv, "POST", "/_sandbox/fail", "", `{"method": "GET", "path": "/v1/users", "status": 503, "times": 1}`)
	assert.Equal(t, 200, code)
	code, _ = do(t, srv, "GET", "/v1/users", tok, "")
	assert.Equal(t, 503, code)
	code, _ = do(t, srv, "GET", "/v1/users", tok, "")
	assert.Equal(t, 200, code)
	code, out = do(t, srv, "GET", "/_sandbox/requests", "", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, 2.0, out["GET /v1/users"])
	code, _ = do(t, srv, "POST", "/_sandbox/fail", "", `{"status": 200, "times": 1}`)
	assert.Equal(t, 400, code)

	code, _ = do(t, srv, "POST", "/_sandbox/webhook-url", "", `{"platform": "chatapp", "url": ""}`)
	assert.Equal(t, 200, code)
	d, err := sb.ChatAppAssign(t.Context(), "1001/grWhatsApp/79161234567", "7")
	require.NoError(t, err)
	assert.Nil(t, d, "no webhook URL, no delivery")
	code, _ = do(t, srv, "POST", "/_sandbox/webhook-url", "", `{"platform": "jivo", "url": ""}`)
	assert.Equal(t, 400, code)

	code, _ = do(t, srv, "POST", "/_sandbox/reset-counters", "", "")
	assert.Equal(t, 200, code)
	assert.Empty(t, sb.RequestCounts())
	assert.Empty(t, sb.Assignments())
	code, _ = do(t, srv, "POST", "/_sandbox/seed", "", `{"chatapp": {"chats": [{"license": "1", "messenger": "wa", "id": "79161234567"}]}}`)
	assert.Equal(t, 200, code)
	assert.Equal(t, map[string]string{"chatapp:1/wa/79161234567": ""}, sb.Responsible("79161234567"))
	code, _ = do(t, srv, "POST", "/_sandbox/seed", "", `{"slack": {}}`)
	assert.Equal(t, 400, code)
	code, _ = do(t, srv, "GET", "/_sandbox/nothing", "", "")
	assert.Equal(t, 404, code)
	code, _ = do(t, srv, "GET", "/v2/contacts", "", "")
	assert.Equal(t, 404, code)
}

// chatappToken signs in with tokens.make as the adapter does.
func chatappToken(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	code, body := do(t, srv, "POST", "/v1/tokens", "", `{"email": "`+sandbox.DefaultChatAppEmail+`", "password": "`+
		sandbox.DefaultChatAppPassword+`", "appId": "`+sandbox.DefaultChatAppAppID+`"}`)
	require.Equal(t, 200, code, "tokens.make: %v", body)
	return body["data"].(map[string]any)["accessToken"].(string)
}

// ChatApp's token lifetimes, as https://chatapp.online/help/gaining-access-chatapp-api/
// describes them, on the sandbox's clock.
func TestChatAppTokens(t *testing.T) {
	now := t0
	sb := sandbox.New(sandbox.Seed{ChatApp: sandbox.ChatAppSeed{AccessTTL: time.Minute, RefreshTTL: time.Hour}},
		sandbox.WithClock(func() time.Time { return now }))
	srv := httptest.NewServer(sb)
	defer srv.Close()
	creds := `{"email": "` + sandbox.DefaultChatAppEmail + `", "password": "` + sandbox.DefaultChatAppPassword + `", "appId": "` + sandbox.DefaultChatAppAppID + `"}`

	code, body := do(t, srv, "POST", "/v1/tokens", "", `{"email": "`+sandbox.DefaultChatAppEmail+`", "password": "wrong", "appId": "`+sandbox.DefaultChatAppAppID+`"}`)
	assert.Equal(t, 401, code)
	assert.Equal(t, false, body["success"])

	code, body = do(t, srv, "POST", "/v1/tokens", "", creds)
	require.Equal(t, 200, code)
	pair := body["data"].(map[string]any)
	assert.InDelta(t, float64(t0.Add(time.Minute).Unix()), pair["accessTokenEndTime"], 0.001)
	assert.InDelta(t, float64(t0.Add(time.Hour).Unix()), pair["refreshTokenEndTime"], 0.001)
	access, refresh := pair["accessToken"].(string), pair["refreshToken"].(string)

	code, _ = do(t, srv, "GET", "/v1/users", access, "")
	assert.Equal(t, 200, code)
	now = t0.Add(time.Minute)
	code, body = do(t, srv, "GET", "/v1/users", access, "")
	assert.Equal(t, 401, code, "an expired access token")
	assert.Equal(t, map[string]any{"code": "ApiInvalidTokenError", "message": "Invalid Token"}, body["error"])

	req, err := http.NewRequest("POST", srv.URL+"/v1/tokens/refresh", nil)
	require.NoError(t, err)
	req.Header.Set("Refresh", refresh)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var fresh struct{ Data struct{ AccessToken string } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&fresh))
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	code, _ = do(t, srv, "GET", "/v1/users", fresh.Data.AccessToken, "")
	assert.Equal(t, 200, code, "the refreshed pair works")
	resp, err = http.DefaultClient.Do(req.Clone(req.Context()))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode, "a refresh token is used up")

	code, _ = do(t, srv, "POST", "/_sandbox/chatapp/password", "", `{"password": "new"}`)
	require.Equal(t, 200, code)
	code, _ = do(t, srv, "GET", "/v1/users", fresh.Data.AccessToken, "")
	assert.Equal(t, 401, code, "a changed password signs every token out")
	code, _ = do(t, srv, "POST", "/v1/tokens", "", creds)
	assert.Equal(t, 401, code, "the old password is refused")
}
