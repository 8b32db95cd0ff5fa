package sandbox

import (
	"errors"
	"net/http"
)

// serveControl is the test-only JSON API under /_sandbox/; it needs no key and is not
// counted:
//
//	GET  /_sandbox/chats?phone=+79161234567   Chats
//	GET  /_sandbox/assignments                Assignments
//	GET  /_sandbox/requests                   RequestCounts
//	POST /_sandbox/reset-counters             ResetCounters
//	POST /_sandbox/seed                       Reseed (body: Seed)
//	POST /_sandbox/webhook-url                {"platform", "url"}
//	POST /_sandbox/fail                       {"method", "path", "status", "times"}
//	POST /_sandbox/chatapp/assign             {"chat": "license/messenger/chat", "user"}
//	POST /_sandbox/chatapp/message            {"chat", "message_id", "text", "inbound", "author"}
//	POST /_sandbox/wazzup/reassign            {"contact", "user"}
//	POST /_sandbox/chatapp/password           {"password"}: ChatAppSetPassword
//	POST /_sandbox/chatapp/drop-tokens        ChatAppDropAccessTokens
//	POST /_sandbox/wazzup/new-client          {"chat_type", "chat_id", "name", "responsible"}
//	POST /_sandbox/wazzup/create-deal         {"responsible", "contacts", "source"}
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + r.URL.Path
	h, ok := map[string]func(*http.Request) (any, error){
		"GET /_sandbox/chats":       func(r *http.Request) (any, error) { return s.Chats(r.URL.Query().Get("phone")), nil },
		"GET /_sandbox/assignments": func(*http.Request) (any, error) { return s.Assignments(), nil },
		"GET /_sandbox/requests":    func(*http.Request) (any, error) { return s.RequestCounts(), nil },
		"POST /_sandbox/reset-counters": func(*http.Request) (any, error) {
			s.ResetCounters()
			return okBody(), nil
		},
		"POST /_sandbox/seed": func(r *http.Request) (any, error) {
			var seed Seed
			if err := decodeBody(r, &seed); err != nil {
				return nil, err
			}
			s.Reseed(seed)
			return okBody(), nil
		},
		"POST /_sandbox/webhook-url": func(r *http.Request) (any, error) {
			var in struct{ Platform, URL string }
			if err := decodeBody(r, &in); err != nil {
				return nil, err
			}
			return okBody(), s.SetWebhookURL(in.Platform, in.URL)
		},
		"POST /_sandbox/fail": func(r *http.Request) (any, error) {
			var in struct {
				Method, Path  string
				Status, Times int
			}
			if err := decodeBody(r, &in); err != nil {
				return nil, err
			}
			return okBody(), s.Fail(in.Method, in.Path, in.Status, in.Times)
		},
		"POST /_sandbox/chatapp/assign": func(r *http.Request) (any, error) {
			var in struct{ Chat, User string }
			if err := decodeBody(r, &in); err != nil {
				return nil, err
			}
			return s.ChatAppAssign(r.Context(), in.Chat, in.User)
		},
		"POST /_sandbox/chatapp/message": func(r *http.Request) (any, error) {
			var in struct {
				Chat      string `json:"chat"`
				MessageID string `json:"message_id"`
				Text      string `json:"text"`
				Inbound   bool   `json:"inbound"`
				Author    string `json:"author"`
			}
			if err := decodeBody(r, &in); err != nil {
				return nil, err
			}
			return s.ChatAppMessage(r.Context(), in.Chat, in.MessageID, in.Text, in.Inbound, in.Author)
		},
		"POST /_sandbox/chatapp/password": func(r *http.Request) (any, error) {
			var in struct{ Password string }
			if err := decodeBody(r, &in); err != nil {
				return nil, err
			}
			s.ChatAppSetPassword(in.Password)
			return okBody(), nil
		},
		"POST /_sandbox/chatapp/drop-tokens": func(*http.Request) (any, error) {
			s.ChatAppDropAccessTokens()
			return okBody(), nil
		},
		"POST /_sandbox/wazzup/create-deal": func(r *http.Request) (any, error) {
			var in struct {
				Responsible string   `json:"responsible"`
				Contacts    []string `json:"contacts"`
				Source      string   `json:"source"`
			}
			if err := decodeBody(r, &in); err != nil {
				return nil, err
			}
			return s.WazzupCreateDeal(r.Context(), in.Responsible, in.Contacts, in.Source)
		},
		"POST /_sandbox/wazzup/reassign": func(r *http.Request) (any, error) {
			var in struct{ Contact, User string }
			if err := decodeBody(r, &in); err != nil {
				return nil, err
			}
			return s.WazzupReassign(r.Context(), in.Contact, in.User)
		},
		"POST /_sandbox/wazzup/new-client": func(r *http.Request) (any, error) {
			var in struct {
				ChatType    string `json:"chat_type"`
				ChatID      string `json:"chat_id"`
				Name        string `json:"name"`
				Responsible string `json:"responsible"`
			}
			if err := decodeBody(r, &in); err != nil {
				return nil, err
			}
			return s.WazzupNewClient(r.Context(), in.ChatType, in.ChatID, in.Name, in.Responsible)
		},
	}[route]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no control endpoint " + route})
		return
	}
	out, err := h(r)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrNotFound) {
			status = http.StatusNotFound
		}
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func okBody() map[string]bool { return map[string]bool{"ok": true} }
