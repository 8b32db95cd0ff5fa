package chatbridge

import (
	"context"
	"errors"
	"net/http"

	"github.com/crmlink/crmlink/crm"
)

// PlatformName names a chat platform in configuration, events and guard keys.
type PlatformName string

// The platforms crmlink speaks.
const (
	Wazzup  PlatformName = "wazzup"
	ChatApp PlatformName = "chatapp"
	Jivo    PlatformName = "jivo"
)

// Platforms lists the known platform names in a stable order.
var Platforms = []PlatformName{Wazzup, ChatApp, Jivo}

// Inbound is the webhook side of a chat platform.
type Inbound interface {
	// Name is the platform's name.
	Name() PlatformName
	// ParseWebhook authenticates a webhook request (the platform's shared secret, in the
	// path or a header as its documentation says) and reads it into events. A request
	// that fails authentication returns an error wrapping ErrUnauthorized; a body that is
	// not the platform's webhook returns one wrapping ErrBadWebhook. A valid delivery that
	// carries nothing crmlink uses (a status update, a connection test) returns no events
	// and no error. It never panics on any input.
	ParseWebhook(r *http.Request) ([]Event, error)
}

// Platform is a chat platform crmlink also writes to: webhooks in, API out.
type Platform interface {
	Inbound
	// ChatsOfClient returns the platform's chats of a CRM client: the things that carry a
	// responsible (a Wazzup contact, a ChatApp chat), each with its current responsible
	// chat user. None is not an error.
	ChatsOfClient(ctx context.Context, c Client) ([]ChatRef, error)
	// AssignResponsible makes the chat user responsible for the chat.
	AssignResponsible(ctx context.Context, chat ChatRef, chatUser string) error
	// Users lists the platform's users.
	Users(ctx context.Context) ([]ChatUser, error)
}

// Client is a CRM client as a chat platform can look it up: by phone and, where the
// platform keys its contacts by CRM contact id (Wazzup), by those ids.
type Client struct {
	Phones     []crm.Phone `json:"phones,omitempty"`
	ContactIDs []int64     `json:"contact_ids,omitempty"`
}

// ChatRef identifies on a platform what carries a client's responsible.
type ChatRef struct {
	Platform PlatformName `json:"platform"`
	// ID is the platform's handle of the thing the responsible is set on: a Wazzup
	// contact id (which is the CRM contact id), a ChatApp "license/messenger/chat" path.
	// Anti ping-pong marks are keyed by it, so an event about the same chat must carry
	// the same ID.
	ID string `json:"id"`
	// ChatType is the messenger ("whatsapp", "telegram", ...), ChatID the client's account
	// in it (digits of the phone for WhatsApp).
	ChatType string `json:"chat_type,omitempty"`
	ChatID   string `json:"chat_id,omitempty"`
	Name     string `json:"name,omitempty"`
	// Responsible is the chat user responsible now; empty when nobody is, or unknown.
	Responsible string `json:"responsible,omitempty"`
	// Read is what the adapter read with the chat in ChatsOfClient (a pointer), handed
	// back to its AssignResponsible so a write right after the read needs no second read.
	Read any `json:"-"`
}

// Key is the chat's anti ping-pong target.
func (c ChatRef) Key() string { return "chat:" + string(c.Platform) + ":" + c.ID }

// ChatUser is a user (an employee) of a chat platform.
type ChatUser struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Phone string `json:"phone,omitempty"`
}

// Errors of adapters; test them with errors.Is.
var (
	// ErrUnauthorized: a webhook without the configured secret (answer 401), or an API
	// key the platform rejected.
	ErrUnauthorized = errors.New("chat platform: not authenticated")
	// ErrBadWebhook: a webhook body that is not the platform's (answer 400).
	ErrBadWebhook = errors.New("chat platform: not a valid webhook")
	// ErrNotFound: the platform does not know the chat, contact or user.
	ErrNotFound = errors.New("chat platform: not found")
	// ErrRejected: the platform refused the request as invalid (a 4xx other than 401,
	// 404 and 429); retrying the same request cannot help.
	ErrRejected = errors.New("chat platform: request rejected")
	// ErrRateLimited: the platform answered 429; retry later.
	ErrRateLimited = errors.New("chat platform: rate limited")
	// ErrUnavailable: the platform did not answer or answered 5xx; retry later.
	ErrUnavailable = errors.New("chat platform: unavailable")
)
