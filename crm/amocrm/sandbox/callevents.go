package sandbox

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// callEventsPath is amoCRM's call event method (the incoming-call card), a v2 path:
// POST {"add":[{"type":"phone_call","phone_number":"…","users":[ids]}]}.
const callEventsPath = "/api/v2/events"

// CallEvent is one incoming-call card a client asked amoCRM to show.
type CallEvent struct {
	PhoneNumber string  `json:"phone_number"`
	Users       []int64 `json:"users"`
	// At is when the sandbox received the request.
	At time.Time `json:"at"`
	// ElementID and ElementType are the entity the card shows: the contact with the
	// number (element_type 1), or none (0: amoCRM offers to create a contact).
	ElementID   int64 `json:"element_id"`
	ElementType int   `json:"element_type"`
}

// elementContact is the v2 API's element_type of a contact.
const elementContact = 1

type callEventIn struct {
	Type        string  `json:"type"`
	PhoneNumber string  `json:"phone_number"`
	Users       []int64 `json:"users"`
}

// postCallEvents serves POST /api/v2/events: each event names type phone_call, a phone
// number and the users to notify (all users when it names none, as amoCRM documents).
// A wrong item fails the request with 400 naming it; nothing of it is kept.
func (s *Server) postCallEvents(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Add []callEventIn `json:"add"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		writeInvalid(w, "add", "the body is not JSON with an add list: "+err.Error())
		return
	}
	if len(body.Add) == 0 {
		writeInvalid(w, "add", "add lists no event")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	events := make([]CallEvent, 0, len(body.Add))
	for i, in := range body.Add {
		path := "add." + strconv.Itoa(i)
		switch {
		case in.Type != "phone_call":
			writeInvalid(w, path+".type", "type must be phone_call")
			return
		case len(digitsOf(in.PhoneNumber)) < 3:
			writeInvalid(w, path+".phone_number", "phone_number must be a phone number")
			return
		}
		users := slices.Clone(in.Users)
		if len(users) == 0 {
			for id := range s.st.users {
				users = append(users, id)
			}
			slices.Sort(users)
		}
		for _, u := range users {
			if s.st.users[u] == nil {
				writeInvalid(w, path+".users", "no user "+strconv.FormatInt(u, 10))
				return
			}
		}
		e := CallEvent{PhoneNumber: in.PhoneNumber, Users: users, At: now}
		if c := s.st.contactWithPhone(in.PhoneNumber); c != nil {
			e.ElementID, e.ElementType = c.ID, elementContact
		}
		events = append(events, e)
	}
	s.st.callEvents = append(s.st.callEvents, events...)
	items := make([]map[string]any, len(events))
	for i, e := range events {
		items[i] = map[string]any{"element_id": e.ElementID, "element_type": e.ElementType, "phone_number": e.PhoneNumber}
	}
	rn := s.renderer(r)
	writeHAL(w, map[string]any{
		"_links":    links{Self: link{Href: rn.base + callEventsPath}},
		"_embedded": map[string]any{"items": items},
	})
}

// contactWithPhone is the first contact (by id) one of whose phones is the number, the
// last ten digits compared; s.mu is held.
func (st *store) contactWithPhone(phone string) *Contact {
	want := lastDigits(phone, 10)
	var found *Contact
	for _, c := range st.contacts {
		for _, p := range c.Phones {
			if lastDigits(p, 10) == want && (found == nil || c.ID < found.ID) {
				found = c
			}
		}
	}
	return found
}

func lastDigits(s string, n int) string {
	d := digitsOf(s)
	return d[max(0, len(d)-n):]
}

// CallEvents returns the incoming-call cards clients asked for since the start or the last
// Reseed, in order.
func (s *Server) CallEvents() []CallEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CallEvent, len(s.st.callEvents))
	for i, e := range s.st.callEvents {
		e.Users = slices.Clone(e.Users)
		out[i] = e
	}
	return out
}

// isCallEvents reports the call event method's path.
func isCallEvents(path string) bool { return strings.TrimSuffix(path, "/") == callEventsPath }
