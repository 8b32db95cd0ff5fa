package sandbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// numberOrString writes an id as a JSON number when it is one, as ChatApp does.
func numberOrString(id string) any {
	if id != "" && len(id) <= 18 && strings.Trim(id, "0123456789") == "" && (id == "0" || id[0] != '0') {
		return json.Number(id)
	}
	return id
}

// ChatAppSeed is the ChatApp account.
type ChatAppSeed struct {
	// Email, Password and AppID are what tokens.make accepts (defaults DefaultChatAppEmail,
	// DefaultChatAppPassword, DefaultChatAppAppID).
	Email    string `json:"email,omitempty"`
	Password string `json:"password,omitempty"`
	AppID    string `json:"app_id,omitempty"`
	// AccessTTL and RefreshTTL are the tokens' lifetimes (ChatApp's: 24 hours and 14
	// days, the defaults); tests make them short to exercise renewal.
	AccessTTL  time.Duration `json:"access_ttl,omitempty"`
	RefreshTTL time.Duration `json:"refresh_ttl,omitempty"`
	// WebhookURL is the full URL events are posted to, ending with crmlink's secret.
	WebhookURL string        `json:"webhook_url,omitempty"`
	Users      []ChatAppUser `json:"users,omitempty"`
	Chats      []ChatAppChat `json:"chats,omitempty"`
}

// ChatAppUser is a ChatApp employee; ids are numbers in ChatApp and strings here.
type ChatAppUser struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// ChatAppChat is a chat of a license's messenger.
type ChatAppChat struct {
	License   string `json:"license"`
	Messenger string `json:"messenger"`
	// ID is the chat id: the client's number in digits for WhatsApp-type messengers.
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Phone       string `json:"phone,omitempty"`
	Responsible string `json:"responsible,omitempty"`
}

// RefID is the chat's chatbridge ChatRef.ID.
func (c ChatAppChat) RefID() string { return c.License + "/" + c.Messenger + "/" + c.ID }

type chatappState struct {
	email, password, appID string
	accessTTL, refreshTTL  time.Duration
	// access and refresh map the tokens issued to when they end.
	access, refresh map[string]time.Time
	webhookURL      string
	users           []ChatAppUser
	chats           map[string]*ChatAppChat
}

func newChatAppState(seed ChatAppSeed) chatappState {
	st := chatappState{email: cmp.Or(seed.Email, DefaultChatAppEmail), password: cmp.Or(seed.Password, DefaultChatAppPassword),
		appID: cmp.Or(seed.AppID, DefaultChatAppAppID), accessTTL: cmp.Or(seed.AccessTTL, 24*time.Hour), refreshTTL: cmp.Or(seed.RefreshTTL, 14*24*time.Hour),
		access: map[string]time.Time{}, refresh: map[string]time.Time{},
		webhookURL: seed.WebhookURL, users: slices.Clone(seed.Users), chats: map[string]*ChatAppChat{}}
	for _, c := range seed.Chats {
		st.chats[c.RefID()] = &c
	}
	return st
}

func (st *chatappState) chatsOf(digits string) []ChatState {
	var out []ChatState
	for _, c := range st.chats {
		if digits != "" && (onlyDigits(c.Phone) == digits || onlyDigits(c.ID) == digits) {
			out = append(out, ChatState{Platform: ChatApp, ID: c.RefID(), ChatType: c.Messenger, ChatID: c.ID, Responsible: c.Responsible})
		}
	}
	return out
}

func (st *chatappState) user(id string) (ChatAppUser, bool) {
	i := slices.IndexFunc(st.users, func(u ChatAppUser) bool { return u.ID == id })
	if i < 0 {
		return ChatAppUser{}, false
	}
	return st.users[i], true
}

// chatappUser renders a user the way ChatApp's JSON carries it: a numeric id when it is one.
func chatappUser(u ChatAppUser) map[string]any {
	return map[string]any{"id": numberOrString(u.ID), "name": u.Name}
}

func (st *chatappState) render(c *ChatAppChat) map[string]any {
	out := map[string]any{"id": c.ID, "name": c.Name, "phone": c.Phone, "responsible": nil}
	if c.Responsible != "" {
		u, ok := st.user(c.Responsible)
		if !ok {
			u = ChatAppUser{ID: c.Responsible}
		}
		out["responsible"] = chatappUser(u)
	}
	return out
}

func chatappError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"success": false, "error": map[string]string{"code": code, "message": message}})
}

func (s *Server) serveChatApp(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/v1/tokens" && r.Method == http.MethodPost:
		s.chatappMakeTokens(w, r)
		return
	case r.URL.Path == "/v1/tokens/refresh" && r.Method == http.MethodPost:
		s.chatappRefreshTokens(w, r)
		return
	}
	s.mu.Lock()
	end, ok := s.chatapp.access[r.Header.Get("Authorization")]
	valid := ok && s.now().Before(end)
	s.mu.Unlock()
	if !valid {
		chatappError(w, http.StatusUnauthorized, "ApiInvalidTokenError", "Invalid Token")
		return
	}
	if r.URL.Path == "/v1/users" && r.Method == http.MethodGet {
		s.mu.Lock()
		data := make([]map[string]any, 0, len(s.chatapp.users))
		for _, u := range s.chatapp.users {
			data = append(data, chatappUser(u))
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": data})
		return
	}
	// /v1/licenses/{license}/messengers/{messenger}/chats/{chat}[/responsible]
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/v1/"), "/")
	if len(parts) < 6 || parts[0] != "licenses" || parts[2] != "messengers" || parts[4] != "chats" || len(parts) > 7 ||
		(len(parts) == 7 && parts[6] != "responsible") {
		chatappError(w, http.StatusNotFound, "notFound", r.Method+" "+r.URL.Path+" is not an endpoint")
		return
	}
	var seg [3]string
	for i, p := range []string{parts[1], parts[3], parts[5]} {
		v, err := url.PathUnescape(p)
		if err != nil || v == "" {
			chatappError(w, http.StatusBadRequest, "validation", "bad path segment "+p)
			return
		}
		seg[i] = v
	}
	ref := seg[0] + "/" + seg[1] + "/" + seg[2]
	switch {
	case len(parts) == 6 && r.Method == http.MethodGet:
		s.mu.Lock()
		c, ok := s.chatapp.chats[ref]
		var body map[string]any
		if ok {
			body = s.chatapp.render(c)
		}
		s.mu.Unlock()
		if !ok {
			chatappError(w, http.StatusNotFound, "notFound", "no chat "+ref)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": body})
	case len(parts) == 7 && r.Method == http.MethodPut:
		var in struct {
			UserID json.Number `json:"userId"`
		}
		if err := decodeBody(r, &in); err != nil || in.UserID == "" {
			chatappError(w, http.StatusBadRequest, "validation", "body must be {\"userId\": <employee id>}")
			return
		}
		if _, err := s.chatappAssign(r.Context(), ref, in.UserID.String(), "api"); err != nil {
			status, code := http.StatusBadRequest, "validation"
			if errors.Is(err, ErrNotFound) {
				status, code = http.StatusNotFound, "notFound"
			}
			chatappError(w, status, code, err.Error())
			return
		}
		s.mu.Lock()
		body := s.chatapp.render(s.chatapp.chats[ref])
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": body})
	default:
		chatappError(w, http.StatusMethodNotAllowed, "methodNotAllowed", r.Method+" is not allowed here")
	}
}

// chatappMakeTokens serves tokens.make: POST /v1/tokens {email, password, appId}.
func (s *Server) chatappMakeTokens(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		AppID    string `json:"appId"`
	}
	if err := decodeBody(r, &in); err != nil {
		chatappError(w, http.StatusBadRequest, "validation", "body must be {email, password, appId}")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.chatapp
	if in.Email != st.email || in.Password != st.password || in.AppID != st.appID {
		chatappError(w, http.StatusUnauthorized, "ApiAuthError", "wrong email, password or appId")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": s.chatappIssue()})
}

// chatappRefreshTokens serves tokens.refresh: POST /v1/tokens/refresh with the header
// "Refresh: <refreshToken>"; the refresh token is used up.
func (s *Server) chatappRefreshTokens(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := r.Header.Get("Refresh")
	end, ok := s.chatapp.refresh[rt]
	if !ok || !s.now().Before(end) {
		chatappError(w, http.StatusUnauthorized, "ApiInvalidTokenError", "Invalid Token")
		return
	}
	delete(s.chatapp.refresh, rt)
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": s.chatappIssue()})
}

// chatappIssue makes a token pair; the caller holds mu.
func (s *Server) chatappIssue() map[string]any {
	now := s.now()
	n := s.eventSeq.Add(1)
	access, refresh := fmt.Sprintf("sandbox-access-%d", n), fmt.Sprintf("sandbox-refresh-%d", n)
	aEnd, rEnd := now.Add(s.chatapp.accessTTL), now.Add(s.chatapp.refreshTTL)
	s.chatapp.access[access], s.chatapp.refresh[refresh] = aEnd, rEnd
	// Fractions of a second: test lifetimes are shorter than ChatApp's whole seconds.
	secs := func(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
	return map[string]any{"accessToken": access, "accessTokenEndTime": secs(aEnd), "refreshToken": refresh,
		"refreshTokenEndTime": secs(rEnd), "cabinetUserId": 1}
}

// ChatAppSetPassword is the account's password changed in ChatApp's cabinet: tokens.make
// takes only the new one, and every token issued so far stops working (the sandbox's
// assumption of what a changed password does).
func (s *Server) ChatAppSetPassword(password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chatapp.password = password
	s.chatapp.access, s.chatapp.refresh = map[string]time.Time{}, map[string]time.Time{}
}

// ChatAppLiveTokens counts the access and refresh tokens that work now.
func (s *Server) ChatAppLiveTokens() (access, refresh int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, end := range s.chatapp.access {
		if now.Before(end) {
			access++
		}
	}
	for _, end := range s.chatapp.refresh {
		if now.Before(end) {
			refresh++
		}
	}
	return access, refresh
}

// ChatAppDropAccessTokens makes every access token issued so far invalid before its end
// time, as ChatApp may; refresh tokens keep working.
func (s *Server) ChatAppDropAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chatapp.access = map[string]time.Time{}
}

// chatappAssign changes a chat's responsible and, for a person's change or when API echo
// is on, posts the chatResponsible event.
func (s *Server) chatappAssign(ctx context.Context, ref, userID, by string) (*Delivery, error) {
	s.mu.Lock()
	c, ok := s.chatapp.chats[ref]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: chatapp chat %q", ErrNotFound, ref)
	}
	if _, known := s.chatapp.user(userID); !known {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: chatapp user %q is not an employee", ErrBadRequest, userID)
	}
	changed := c.Responsible != userID
	c.Responsible = userID
	s.assigned(ChatApp, ref, userID, by)
	var body map[string]any
	if changed && (by == "person" || s.apiEcho) {
		body = s.chatappEvent(TypeChatResponsible, c, nil)
	}
	target := s.chatapp.webhookURL
	s.mu.Unlock()
	if body == nil {
		return nil, nil
	}
	return s.post(ctx, target, "", body), nil
}

// ChatApp event types the sandbox posts.
const (
	TypeMessage         = "message"
	TypeChatResponsible = "chatResponsible"
	TypeChatCreated     = "chatCreated"
)

// chatappEvent builds a delivery of one event; the caller holds mu.
func (s *Server) chatappEvent(typ string, c *ChatAppChat, message map[string]any) map[string]any {
	e := map[string]any{
		"id":   fmt.Sprintf("sandbox-%d", s.eventSeq.Add(1)),
		"type": typ, "licenseId": numberOrString(c.License), "messengerType": c.Messenger,
		"time": s.now().Unix(), "chat": s.chatapp.render(c),
	}
	if message != nil {
		e["message"] = message
	}
	return map[string]any{"events": []any{e}}
}

// AddChatAppChat adds or replaces a chat.
func (s *Server) AddChatAppChat(c ChatAppChat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chatapp.chats[c.RefID()] = &c
}

// ChatAppChat returns a chat as it is now, by its RefID.
func (s *Server) ChatAppChat(ref string) (ChatAppChat, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.chatapp.chats[ref]
	if !ok {
		return ChatAppChat{}, false
	}
	return *c, true
}

// ChatAppAssign is a ChatApp employee giving the chat (by RefID) to another employee; the
// chatResponsible event is posted when the responsible changed.
func (s *Server) ChatAppAssign(ctx context.Context, ref, userID string) (*Delivery, error) {
	return s.chatappAssign(ctx, ref, userID, "person")
}

// ChatAppCreateChat is a new dialog: the chat is added and chatCreated is posted.
func (s *Server) ChatAppCreateChat(ctx context.Context, c ChatAppChat) (*Delivery, error) {
	if c.License == "" || c.Messenger == "" || c.ID == "" {
		return nil, fmt.Errorf("%w: a chat needs license, messenger and id", ErrBadRequest)
	}
	s.mu.Lock()
	s.chatapp.chats[c.RefID()] = &c
	body := s.chatappEvent(TypeChatCreated, &c, nil)
	target := s.chatapp.webhookURL
	s.mu.Unlock()
	return s.post(ctx, target, "", body), nil
}

// ChatAppMessage is a message in a chat: from the client (inbound) or from employee author.
func (s *Server) ChatAppMessage(ctx context.Context, ref, messageID, text string, inbound bool, author string) (*Delivery, error) {
	s.mu.Lock()
	c, ok := s.chatapp.chats[ref]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: chatapp chat %q", ErrNotFound, ref)
	}
	m := map[string]any{"id": messageID, "text": text, "type": "text", "fromMe": !inbound}
	if !inbound {
		u, _ := s.chatapp.user(author)
		if u.ID == "" {
			u.ID = author
		}
		m["author"] = chatappUser(u)
	}
	body := s.chatappEvent(TypeMessage, c, m)
	target := s.chatapp.webhookURL
	s.mu.Unlock()
	return s.post(ctx, target, "", body), nil
}
