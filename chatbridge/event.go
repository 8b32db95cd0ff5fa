package chatbridge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
)

// EventKind says what happened in a chat.
type EventKind string

const (
	// EventDialogOpened: a client started (or reopened) a dialog; CRM to chat sync gives it
	// the CRM's responsible.
	EventDialogOpened EventKind = "dialog_opened"
	// EventResponsibleAssigned: the platform made ChatUser responsible for the chat (a
	// person did, or the platform's own distribution); chat to CRM sync follows it.
	EventResponsibleAssigned EventKind = "responsible_assigned"
	// EventMessage: a message in the chat, from the client (inbound) or an employee.
	EventMessage EventKind = "message"
	// EventChatAccepted: an online-chat agent accepted the visitor's chat (Jivo).
	EventChatAccepted EventKind = "chat_accepted"
	// EventChatFinished: an online chat ended (Jivo).
	EventChatFinished EventKind = "chat_finished"
	// EventOfflineMessage: a visitor left a message while no agent was online (Jivo).
	EventOfflineMessage EventKind = "offline_message"
	// EventContactWanted: the platform asks the CRM for the client's contact (Wazzup's
	// createContact) and expects it in the webhook's answer; ChatUser is the chat's
	// responsible. Answered at once, never queued.
	EventContactWanted EventKind = "contact_wanted"
	// EventDealWanted: the platform asks the CRM for a deal of Contacts with ChatUser
	// responsible (Wazzup's createDeal) and expects it in the answer. Answered at once.
	EventDealWanted EventKind = "deal_wanted"
)

// Wanted reports whether the event asks for a CRM entity in the webhook's answer.
func (k EventKind) Wanted() bool { return k == EventContactWanted || k == EventDealWanted }

// Event is one thing a chat platform reported, in the platform-neutral form the queue
// carries (as JSON, see ChatEvents) to Sync and the online-chat leads.
type Event struct {
	// ID is the idempotency key: the platform's event or message id when it has one,
	// otherwise a digest of the delivery's content, prefixed with the platform.
	ID       string       `json:"id"`
	Platform PlatformName `json:"platform"`
	Kind     EventKind    `json:"kind"`
	// At is when it happened: the platform's time, or when crmlink received it.
	At time.Time `json:"at"`
	// Chat is the chat it happened in; Chat.ID is empty when the platform did not say
	// (a Wazzup message names the chat by messenger and account only).
	Chat ChatRef `json:"chat"`
	// Phone is the client's number in E.164 when the platform gave a readable one.
	Phone crm.Phone `json:"phone,omitempty"`
	// RawPhone is the number as the platform sent it.
	RawPhone string `json:"raw_phone,omitempty"`
	// ChatUser is the platform user the event is about: the newly responsible user, the
	// agent who accepted a chat, the author of an outgoing message.
	ChatUser     string `json:"chat_user,omitempty"`
	ChatUserName string `json:"chat_user_name,omitempty"`
	// ClientName is how the platform names the client.
	ClientName string   `json:"client_name,omitempty"`
	Message    *Message `json:"message,omitempty"`
	Visitor    *Visitor `json:"visitor,omitempty"`
	// Contacts are the CRM contact ids an EventDealWanted links the deal to.
	Contacts []string `json:"contacts,omitempty"`
	Origin   *Origin  `json:"origin,omitempty"`
}

// Message is a chat message.
type Message struct {
	ID   string `json:"id,omitempty"`
	Text string `json:"text,omitempty"`
	// Inbound is true for a message from the client, false for one from an employee.
	Inbound bool   `json:"inbound"`
	Type    string `json:"type,omitempty"`
}

// Visitor is an online-chat visitor as the chat widget knows them.
type Visitor struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
	// Number is the widget's own number of the visitor (Jivo's visitor.number), which lead
	// rules match as the external number.
	Number      string `json:"number,omitempty"`
	Description string `json:"description,omitempty"`
	// ChatsCount is how many chats the visitor had (more than one: a returning visitor).
	ChatsCount int `json:"chats_count,omitempty"`
}

// Origin is where an online chat came from: the inputs of lead rules (source, utm, page,
// department) and of duplicate detection.
type Origin struct {
	WidgetID   string     `json:"widget_id,omitempty"`
	Department Department `json:"department,omitzero"`
	UTM        UTM        `json:"utm,omitzero"`
	// UTMRaw is the utm string as sent ("source=google|medium=cpc").
	UTMRaw    string `json:"utm_raw,omitempty"`
	PageURL   string `json:"page_url,omitempty"`
	PageTitle string `json:"page_title,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	Country   string `json:"country,omitempty"`
	Region    string `json:"region,omitempty"`
	City      string `json:"city,omitempty"`
}

// Department is a chat department (a group of agents).
type Department struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// UTM holds the standard utm tags.
type UTM struct {
	Source   string `json:"source,omitempty"`
	Medium   string `json:"medium,omitempty"`
	Campaign string `json:"campaign,omitempty"`
	Content  string `json:"content,omitempty"`
	Term     string `json:"term,omitempty"`
}

// ChatEvents is the event path's type of chat events (events.KindChat). Their order key
// is the client's phone, the one a client's calls have too (events.PhoneKey), or without a
// readable phone the chat, so one client's chat events are handled one at a time in
// arrival order.
var ChatEvents = events.Type[Event]{
	Kind: events.KindChat,
	ID:   func(e Event) string { return e.ID },
	Key: func(e Event) string {
		switch {
		case e.Phone != "":
			return events.PhoneKey(e.Phone)
		case e.Chat.ID != "":
			return e.Chat.Key()
		}
		return ""
	},
	Check: func(e Event) error {
		if e.ID == "" || e.Platform == "" || e.Kind == "" {
			return fmt.Errorf("chatbridge: event needs an ID, a platform and a kind (got %q, %q, %q)", e.ID, e.Platform, e.Kind)
		}
		return nil
	},
}

// QueueEvent is the event as the queue carries it, encoded with its order key.
func (e Event) QueueEvent() (events.Envelope, error) { return ChatEvents.Encode(e) }

// DigestID builds an event ID from the parts that identify a delivery when the platform
// gives no id of its own: the same parts give the same ID, so a redelivery is one event.
func DigestID(p PlatformName, parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	return string(p) + ":" + hex.EncodeToString(h.Sum(nil)[:12])
}
