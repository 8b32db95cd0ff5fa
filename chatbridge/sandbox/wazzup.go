package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// WazzupSeed is the Wazzup account.
type WazzupSeed struct {
	// APIKey is the Bearer key the API accepts (default DefaultWazzupAPIKey).
	APIKey string `json:"api_key,omitempty"`
	// CRMKey is sent as "Authorization: Bearer <crmKey>" with every webhook (default
	// DefaultWazzupCRMKey).
	CRMKey     string          `json:"crm_key,omitempty"`
	WebhookURL string          `json:"webhook_url,omitempty"`
	Users      []WazzupUser    `json:"users,omitempty"`
	Contacts   []WazzupContact `json:"contacts,omitempty"`
}

// WazzupUser is Wazzup's user entity.
type WazzupUser struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Phone string `json:"phone,omitempty"`
}

// WazzupContact is Wazzup's contact entity (id = the CRM contact id).
type WazzupContact struct {
	ID                string              `json:"id"`
	ResponsibleUserID string              `json:"responsibleUserId"`
	Name              string              `json:"name"`
	ContactData       []WazzupContactData `json:"contactData"`
	URI               string              `json:"uri,omitempty"`
}

// WazzupContactData is one messenger account of a contact.
type WazzupContactData struct {
	ChatType string `json:"chatType"`
	ChatID   string `json:"chatId,omitempty"`
	Username string `json:"username,omitempty"`
	Phone    string `json:"phone,omitempty"`
}

type wazzupState struct {
	apiKey, crmKey, webhookURL string
	users                      []WazzupUser
	contacts                   map[string]*WazzupContact
	deals                      map[string]WazzupDeal
	subscriptions              map[string]bool
}

func newWazzupState(seed WazzupSeed) wazzupState {
	st := wazzupState{apiKey: seed.APIKey, crmKey: seed.CRMKey, webhookURL: seed.WebhookURL,
		users: slices.Clone(seed.Users), contacts: map[string]*WazzupContact{}, deals: map[string]WazzupDeal{}}
	if st.apiKey == "" {
		st.apiKey = DefaultWazzupAPIKey
	}
	if st.crmKey == "" {
		st.crmKey = DefaultWazzupCRMKey
	}
	for _, c := range seed.Contacts {
		st.contacts[c.ID] = cloneContact(c)
	}
	return st
}

func cloneContact(c WazzupContact) *WazzupContact {
	c.ContactData = slices.Clone(c.ContactData)
	return &c
}

// wazzupChatTypes are the chatType values Wazzup documents.
var wazzupChatTypes = []string{"whatsapp", "whatsgroup", "instagram", "telegram", "telegroup", "vk", "avito", "viber", "wapi", "tgapi", "max"}

func (st *wazzupState) chatsOf(digits string) []ChatState {
	var out []ChatState
	for _, c := range st.contacts {
		for _, d := range c.ContactData {
			if digits != "" && (onlyDigits(d.Phone) == digits || (d.ChatType == "whatsapp" && onlyDigits(d.ChatID) == digits)) {
				out = append(out, ChatState{Platform: Wazzup, ID: c.ID, ChatType: d.ChatType, ChatID: d.ChatID, Responsible: c.ResponsibleUserID})
				break
			}
		}
	}
	return out
}

func (st *wazzupState) userKnown(id string) bool {
	return len(st.users) == 0 || slices.ContainsFunc(st.users, func(u WazzupUser) bool { return u.ID == id })
}

// wazzupError writes Wazzup's error body {error, description, data}.
func wazzupError(w http.ResponseWriter, status int, code, description string, data any) {
	body := map[string]any{"error": code, "description": description}
	if data != nil {
		body["data"] = data
	}
	writeJSON(w, status, body)
}

func (s *Server) serveWazzup(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	key := s.wazzup.apiKey
	s.mu.Unlock()
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || got != key {
		wazzupError(w, http.StatusUnauthorized, "UNAUTHORIZED", "the API key is missing or wrong", nil)
		return
	}
	path := r.URL.Path
	switch {
	case path == "/v3/users" && r.Method == http.MethodGet:
		s.wazzupUsers(w, r)
	case path == "/v3/contacts" && r.Method == http.MethodPost:
		s.wazzupUpsertContacts(w, r)
	case strings.HasPrefix(path, "/v3/contacts/") && r.Method == http.MethodGet:
		id, err := url.PathUnescape(strings.TrimPrefix(path, "/v3/contacts/"))
		if err != nil || id == "" {
			wazzupError(w, http.StatusBadRequest, "VALIDATION_ERROR", "bad contact id", nil)
			return
		}
		s.mu.Lock()
		c, ok := s.wazzup.contacts[id]
		var out WazzupContact
		if ok {
			out = *cloneContact(*c)
		}
		s.mu.Unlock()
		if !ok {
			wazzupError(w, http.StatusNotFound, "CONTACT_NOT_FOUND", "no contact with id "+id, nil)
			return
		}
		writeJSON(w, http.StatusOK, out)
	case path == "/v3/webhooks" && r.Method == http.MethodPatch:
		s.wazzupWebhooks(w, r)
	default:
		wazzupError(w, http.StatusNotFound, "NOT_FOUND", r.Method+" "+path+" is not an endpoint", nil)
	}
}

// wazzupUsers serves GET /v3/users: pages of 100 sorted by name, from ?offset=.
func (s *Server) wazzupUsers(w http.ResponseWriter, r *http.Request) {
	offset := 0
	if v := r.URL.Query().Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			wazzupError(w, http.StatusBadRequest, "VALIDATION_ERROR", "offset must be a non-negative number", nil)
			return
		}
		offset = n
	}
	s.mu.Lock()
	users := slices.Clone(s.wazzup.users)
	s.mu.Unlock()
	slices.SortStableFunc(users, func(a, b WazzupUser) int { return strings.Compare(a.Name, b.Name) })
	page := []WazzupUser{}
	if offset < len(users) {
		page = users[offset:min(len(users), offset+100)]
	}
	writeJSON(w, http.StatusOK, page)
}

type fieldProblem struct {
	Index  int      `json:"index"`
	Fields []string `json:"fields"`
}

// wazzupUpsertContacts serves POST /v3/contacts: at most 100 contacts, all valid or none
// written.
func (s *Server) wazzupUpsertContacts(w http.ResponseWriter, r *http.Request) {
	var in []WazzupContact
	if err := decodeBody(r, &in); err != nil {
		wazzupError(w, http.StatusBadRequest, "VALIDATION_ERROR", err.Error(), nil)
		return
	}
	if len(in) > 100 {
		wazzupError(w, http.StatusBadRequest, "TOO_MACH_ENTITIES", fmt.Sprintf("%d contacts; at most 100 per request", len(in)), nil)
		return
	}
	s.mu.Lock()
	var problems []fieldProblem
	for i, c := range in {
		var bad []string
		if c.ID == "" || len(c.ID) > 100 {
			bad = append(bad, "id")
		}
		if c.ResponsibleUserID == "" || len(c.ResponsibleUserID) > 100 || !s.wazzup.userKnown(c.ResponsibleUserID) {
			bad = append(bad, "responsibleUserId")
		}
		if c.Name == "" || len(c.Name) > 200 {
			bad = append(bad, "name")
		}
		if len(c.ContactData) == 0 {
			bad = append(bad, "contactData")
		}
		for _, d := range c.ContactData {
			if !slices.Contains(wazzupChatTypes, d.ChatType) {
				bad = append(bad, "contactData.chatType")
			}
			if d.ChatID == "" && !(d.ChatType == "telegram" && (d.Username != "" || d.Phone != "")) {
				bad = append(bad, "contactData.chatId")
			}
		}
		if len(c.URI) > 200 {
			bad = append(bad, "uri")
		}
		if bad != nil {
			problems = append(problems, fieldProblem{Index: i, Fields: bad})
		}
	}
	if problems != nil {
		s.mu.Unlock()
		wazzupError(w, http.StatusBadRequest, "VALIDATION_ERROR", "some contacts are not valid", problems)
		return
	}
	for _, c := range in {
		old, existed := s.wazzup.contacts[c.ID]
		if !existed || old.ResponsibleUserID != c.ResponsibleUserID {
			s.assigned(Wazzup, c.ID, c.ResponsibleUserID, "api")
		}
		s.wazzup.contacts[c.ID] = cloneContact(c)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// wazzupWebhooks serves PATCH /v3/webhooks: the new URI must answer a {"test": true} POST
// with 200.
func (s *Server) wazzupWebhooks(w http.ResponseWriter, r *http.Request) {
	var in struct {
		WebhooksURI   string          `json:"webhooksUri"`
		Subscriptions map[string]bool `json:"subscriptions"`
	}
	if err := decodeBody(r, &in); err != nil {
		wazzupError(w, http.StatusBadRequest, "VALIDATION_ERROR", err.Error(), nil)
		return
	}
	if u, err := url.Parse(in.WebhooksURI); err != nil || u.Host == "" || len(in.WebhooksURI) > 200 {
		wazzupError(w, http.StatusBadRequest, "VALIDATION_ERROR", "webhooksUri must be an absolute URL of at most 200 characters", nil)
		return
	}
	s.mu.Lock()
	crmKey := s.wazzup.crmKey
	s.mu.Unlock()
	d := s.post(r.Context(), in.WebhooksURI, crmKey, map[string]bool{"test": true})
	if d.Status != http.StatusOK {
		wazzupError(w, http.StatusBadRequest, "WEBHOOK_TEST_FAILED", "Webhooks request not valid. Response status must be 200", d)
		return
	}
	s.mu.Lock()
	s.wazzup.webhookURL, s.wazzup.subscriptions = in.WebhooksURI, in.Subscriptions
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// WazzupSubscriptions returns the webhook URL and subscriptions set through the API.
func (s *Server) WazzupSubscriptions() (string, map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for k, v := range s.wazzup.subscriptions {
		out[k] = v
	}
	return s.wazzup.webhookURL, out
}

// WazzupContact returns a contact as it is now.
func (s *Server) WazzupContact(id string) (WazzupContact, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.wazzup.contacts[id]
	if !ok {
		return WazzupContact{}, false
	}
	return *cloneContact(*c), true
}

// AddWazzupContact adds or replaces a contact, as the integration would have posted it.
func (s *Server) AddWazzupContact(c WazzupContact) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wazzup.contacts[c.ID] = cloneContact(c)
}

// WazzupReassign is a Wazzup employee giving a contact to another user: the contact
// changes and a "contacts" webhook with the contact entity is posted (the adapter's
// assumption; Wazzup documents no such webhook).
func (s *Server) WazzupReassign(ctx context.Context, contactID, userID string) (*Delivery, error) {
	s.mu.Lock()
	c, ok := s.wazzup.contacts[contactID]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: wazzup contact %q", ErrNotFound, contactID)
	}
	if userID == "" || !s.wazzup.userKnown(userID) {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: wazzup user %q is not in the account", ErrBadRequest, userID)
	}
	c.ResponsibleUserID = userID
	s.assigned(Wazzup, contactID, userID, "person")
	body := map[string]any{"contacts": []WazzupContact{*cloneContact(*c)}}
	target, key := s.wazzup.webhookURL, s.wazzup.crmKey
	s.mu.Unlock()
	return s.post(ctx, target, key, body), nil
}

// WazzupDeal is Wazzup's deal entity (the CRM's deal: id, responsible, contacts).
type WazzupDeal struct {
	ID                string   `json:"id"`
	ResponsibleUserID string   `json:"responsibleUserId"`
	Name              string   `json:"name"`
	URI               string   `json:"uri,omitempty"`
	Contacts          []string `json:"contacts"`
	Closed            bool     `json:"closed"`
}

// NewClientDeliveries are the webhooks a new client's first message caused.
type NewClientDeliveries struct {
	CreateContact *Delivery `json:"create_contact"`
	// CreateDeal is posted once createContact was answered with a contact entity.
	CreateDeal *Delivery `json:"create_deal,omitempty"`
}

// WazzupNewClient is a new client writing, as Wazzup's webhooks page describes it: the
// chat goes to responsible and Wazzup posts createContact; the CRM answers with the
// contact entity (which Wazzup keeps), then Wazzup posts createDeal for that contact and
// keeps the deal the CRM answers with.
func (s *Server) WazzupNewClient(ctx context.Context, chatType, chatID, name, responsible string) (*NewClientDeliveries, error) {
	if chatType == "" || chatID == "" || responsible == "" {
		return nil, fmt.Errorf("%w: a new client needs chatType, chatId and a responsible", ErrBadRequest)
	}
	s.mu.Lock()
	target, key := s.wazzup.webhookURL, s.wazzup.crmKey
	s.mu.Unlock()
	body := map[string]any{"createContact": map[string]any{
		"responsibleUserId": responsible, "name": name, "source": "auto",
		"contactData": []WazzupContactData{{ChatType: chatType, ChatID: chatID}},
	}}
	out := &NewClientDeliveries{CreateContact: s.post(ctx, target, key, body)}
	var ct WazzupContact
	if d := out.CreateContact; d == nil || d.Status != http.StatusOK || json.Unmarshal(d.Body, &ct) != nil || ct.ID == "" {
		return out, nil
	}
	s.AddWazzupContact(ct)
	d, err := s.WazzupCreateDeal(ctx, responsible, []string{ct.ID}, "auto")
	out.CreateDeal = d
	return out, err
}

// WazzupCreateDeal is Wazzup asking the CRM for a deal of existing contacts (a new
// client's chat, or an employee's "+" in the Deals list: source "byUser"); a deal entity
// in the answer is kept.
func (s *Server) WazzupCreateDeal(ctx context.Context, responsible string, contacts []string, source string) (*Delivery, error) {
	if responsible == "" || len(contacts) == 0 {
		return nil, fmt.Errorf("%w: createDeal needs a responsible and contacts", ErrBadRequest)
	}
	s.mu.Lock()
	target, key := s.wazzup.webhookURL, s.wazzup.crmKey
	s.mu.Unlock()
	d := s.post(ctx, target, key, map[string]any{"createDeal": map[string]any{
		"responsibleUserId": responsible, "contacts": contacts, "source": source}})
	var deal WazzupDeal
	if d != nil && d.Status == http.StatusOK && json.Unmarshal(d.Body, &deal) == nil && deal.ID != "" {
		s.mu.Lock()
		s.wazzup.deals[deal.ID] = deal
		s.mu.Unlock()
	}
	return d, nil
}

// WazzupDeals returns the deals Wazzup keeps, as the CRM answered them.
func (s *Server) WazzupDeals() []WazzupDeal {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]WazzupDeal, 0, len(s.wazzup.deals))
	for _, d := range s.wazzup.deals {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b WazzupDeal) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// WazzupMessage is a message in a chat: inbound from the client, or sent by authorID.
func (s *Server) WazzupMessage(ctx context.Context, messageID, chatType, chatID, text string, inbound bool, authorID string) *Delivery {
	s.mu.Lock()
	target, key := s.wazzup.webhookURL, s.wazzup.crmKey
	now := s.now().UTC()
	s.mu.Unlock()
	m := map[string]any{
		"messageId": messageID, "dateTime": now.Format("2006-01-02T15:04:05.000Z"), "channelId": "sandbox-channel",
		"chatType": chatType, "chatId": chatID, "type": "text", "isEcho": !inbound, "text": text,
		"status": map[bool]string{true: "inbound", false: "sent"}[inbound],
	}
	if !inbound {
		m["authorId"] = authorID
	}
	return s.post(ctx, target, key, map[string]any{"messages": []any{m}})
}
