package chatapp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/internal/jsonid"
	"github.com/crmlink/crmlink/crm"
)

// Event is one ChatApp webhook event (the assumed shape, see the package comment).
type Event struct {
	ID            jsonid.ID       `json:"id,omitempty"`
	Type          string          `json:"type"`
	LicenseID     jsonid.ID       `json:"licenseId"`
	MessengerType string          `json:"messengerType"`
	Time          int64           `json:"time,omitempty"`
	Chat          Chat            `json:"chat"`
	Message       *Message        `json:"message,omitempty"`
	Extra         json.RawMessage `json:"data,omitempty"`
}

// Message is a message of a "message" event.
type Message struct {
	ID     jsonid.ID `json:"id"`
	Text   string    `json:"text,omitempty"`
	Type   string    `json:"type,omitempty"`
	FromMe bool      `json:"fromMe"`
	Author *User     `json:"author,omitempty"`
}

// Event types.
const (
	TypeMessage     = "message"
	TypeResponsible = "chatResponsible"
	TypeChatCreated = "chatCreated"
)

// Webhook is a delivery: a list of events (or, when Events is absent, one event).
type Webhook struct {
	Events []Event `json:"events"`
}

// ParseWebhook implements chatbridge.Inbound: "message" gives EventMessage (Inbound unless
// fromMe; ChatUser is the author of an employee's message), "chatResponsible" gives
// EventResponsibleAssigned (ChatUser is the new responsible, empty when removed),
// "chatCreated" gives EventDialogOpened. Other event types give nothing.
func (c *Client) ParseWebhook(r *http.Request) ([]chatbridge.Event, error) {
	body, err := chatbridge.ReadWebhook(r, chatbridge.ChatApp, func(r *http.Request) error { return chatbridge.CheckPathSecret(r, c.secret) })
	if err != nil {
		return nil, err
	}
	return c.parse(body)
}

func (c *Client) parse(body []byte) ([]chatbridge.Event, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("chatapp webhook: %w: body is not a JSON object", chatbridge.ErrBadWebhook)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &probe); err != nil {
		return nil, fmt.Errorf("chatapp webhook: %w: %w", chatbridge.ErrBadWebhook, err)
	}
	var events []Event
	if _, ok := probe["events"]; ok {
		var wh Webhook
		if err := json.Unmarshal(trimmed, &wh); err != nil {
			return nil, fmt.Errorf("chatapp webhook: %w: %w", chatbridge.ErrBadWebhook, err)
		}
		events = wh.Events
	} else {
		var e Event
		if err := json.Unmarshal(trimmed, &e); err != nil {
			return nil, fmt.Errorf("chatapp webhook: %w: %w", chatbridge.ErrBadWebhook, err)
		}
		events = []Event{e}
	}
	received := c.now().UTC()
	var out []chatbridge.Event
	for i, e := range events {
		ev, ok, err := c.event(e, received)
		if err != nil {
			return nil, fmt.Errorf("chatapp webhook: events[%d]: %w", i, err)
		}
		if ok {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (c *Client) event(e Event, received time.Time) (chatbridge.Event, bool, error) {
	if e.Type == "" {
		return chatbridge.Event{}, false, fmt.Errorf("%w: an event needs a type", chatbridge.ErrBadWebhook)
	}
	var kind chatbridge.EventKind
	switch e.Type {
	case TypeMessage:
		kind = chatbridge.EventMessage
		if e.Message == nil {
			return chatbridge.Event{}, false, fmt.Errorf("%w: a message event needs message", chatbridge.ErrBadWebhook)
		}
	case TypeResponsible:
		kind = chatbridge.EventResponsibleAssigned
	case TypeChatCreated:
		kind = chatbridge.EventDialogOpened
	default:
		return chatbridge.Event{}, false, nil
	}
	license, messenger, chatID := string(e.LicenseID), e.MessengerType, e.Chat.ID
	if license == "" || messenger == "" || chatID == "" ||
		strings.ContainsAny(license+messenger, "/?#") || strings.ContainsAny(chatID, "?#") {
		return chatbridge.Event{}, false, fmt.Errorf("%w: %s event needs licenseId, messengerType and chat.id", chatbridge.ErrBadWebhook, e.Type)
	}
	at := received
	if e.Time != 0 {
		if e.Time < 0 || e.Time > 1<<35 {
			return chatbridge.Event{}, false, fmt.Errorf("%w: time %d is not Unix seconds", chatbridge.ErrBadWebhook, e.Time)
		}
		at = time.Unix(e.Time, 0).UTC()
	}
	ref := chatbridge.ChatRef{Platform: chatbridge.ChatApp, ID: RefID(license, messenger, chatID), ChatType: messenger, ChatID: chatID, Name: e.Chat.Name}
	if e.Chat.Responsible != nil {
		ref.Responsible = string(e.Chat.Responsible.ID)
	}
	out := chatbridge.Event{Platform: chatbridge.ChatApp, Kind: kind, At: at, Chat: ref, ClientName: e.Chat.Name}
	out.Phone, out.RawPhone = c.phoneOf(e.Chat)
	switch kind {
	case chatbridge.EventMessage:
		m := e.Message
		out.Message = &chatbridge.Message{ID: string(m.ID), Text: m.Text, Inbound: !m.FromMe, Type: m.Type}
		if m.FromMe && m.Author != nil {
			out.ChatUser, out.ChatUserName = string(m.Author.ID), m.Author.Name
		}
		if m.ID != "" {
			out.ID = "chatapp:msg:" + ref.ID + ":" + string(m.ID)
		}
	case chatbridge.EventResponsibleAssigned:
		if e.Chat.Responsible != nil {
			out.ChatUser, out.ChatUserName = string(e.Chat.Responsible.ID), e.Chat.Responsible.Name
		}
	}
	if out.ID == "" && e.ID != "" {
		out.ID = "chatapp:" + string(e.ID)
	}
	if out.ID == "" {
		out.ID = chatbridge.DigestID(chatbridge.ChatApp, e.Type, ref.ID, out.ChatUser, strconv.FormatInt(at.UnixMilli(), 10))
	}
	return out, true, nil
}

// phoneOf reads the client's number: the chat's phone, or a WhatsApp-type chat id made of
// digits.
func (c *Client) phoneOf(ch Chat) (crm.Phone, string) {
	raw := strings.TrimSpace(ch.Phone)
	if raw == "" && strings.Trim(ch.ID, "0123456789") == "" && len(ch.ID) >= 7 {
		raw = ch.ID
	}
	return chatbridge.MessengerPhone(raw, c.region)
}
