package chatbridge

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/queue"
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
// carries (as JSON) to Sync and the rules engine.
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

// Queue event kinds Sync handles.
const (
	QueueKindChat = "chat_event"
	QueueKindCRM  = "crm_event"
)

// QueueEvent wraps the event for the durable queue; its ID is the event's.
func (e Event) QueueEvent() (queue.Event, error) {
	if e.ID == "" || e.Platform == "" || e.Kind == "" {
		return queue.Event{}, fmt.Errorf("chatbridge: event needs an ID, a platform and a kind (got %q, %q, %q)", e.ID, e.Platform, e.Kind)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return queue.Event{}, fmt.Errorf("chatbridge: encode event %s: %w", e.ID, err)
	}
	return queue.Event{ID: e.ID, Kind: QueueKindChat, Payload: b}, nil
}

// DecodeEvent reads a chat event back from a queue event.
func DecodeEvent(q queue.Event) (Event, error) {
	if q.Kind != QueueKindChat {
		return Event{}, fmt.Errorf("chatbridge: queue event %s is a %q, not a %q", q.ID, q.Kind, QueueKindChat)
	}
	var e Event
	if err := json.Unmarshal(q.Payload, &e); err != nil {
		return Event{}, fmt.Errorf("chatbridge: queue event %s: %w", q.ID, err)
	}
	if e.ID == "" || e.Platform == "" || e.Kind == "" {
		return Event{}, fmt.Errorf("chatbridge: queue event %s: payload has no id, platform or kind", q.ID)
	}
	return e, nil
}

// crmChange is the queue payload of a crm.ResponsibleChange, with stable JSON names.
type crmChange struct {
	Entity         crm.EntityType `json:"entity"`
	ID             int64          `json:"id"`
	Responsible    crm.UserID     `json:"responsible"`
	OldResponsible crm.UserID     `json:"old_responsible,omitempty"`
	ModifiedBy     crm.UserID     `json:"modified_by,omitempty"`
	At             time.Time      `json:"at,omitzero"`
}

// CRMQueueEvent wraps a responsible change reported by the CRM for the durable queue. The
// ID names the entity, the new responsible and the time, so a webhook delivered twice is
// one event.
func CRMQueueEvent(ch crm.ResponsibleChange) (queue.Event, error) {
	if ch.Entity == "" || ch.ID <= 0 {
		return queue.Event{}, fmt.Errorf("chatbridge: responsible change needs an entity and a positive id (got %q %d)", ch.Entity, ch.ID)
	}
	b, err := json.Marshal(crmChange(ch))
	if err != nil {
		return queue.Event{}, err
	}
	id := fmt.Sprintf("crm:%s:%d:%d:%d", ch.Entity, ch.ID, ch.Responsible, ch.At.UnixMilli())
	return queue.Event{ID: id, Kind: QueueKindCRM, Payload: b}, nil
}

// DecodeCRMChange reads a responsible change back from a queue event.
func DecodeCRMChange(q queue.Event) (crm.ResponsibleChange, error) {
	if q.Kind != QueueKindCRM {
		return crm.ResponsibleChange{}, fmt.Errorf("chatbridge: queue event %s is a %q, not a %q", q.ID, q.Kind, QueueKindCRM)
	}
	var c crmChange
	if err := json.Unmarshal(q.Payload, &c); err != nil {
		return crm.ResponsibleChange{}, fmt.Errorf("chatbridge: queue event %s: %w", q.ID, err)
	}
	if c.Entity == "" || c.ID <= 0 {
		return crm.ResponsibleChange{}, errors.New("chatbridge: queue event " + q.ID + ": payload has no entity or id")
	}
	return crm.ResponsibleChange(c), nil
}

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

// OrderKey is a queue.Options.OrderKey for chat events: the client's phone (or, without
// one, the chat), so one client's chat events are handled one at a time in arrival order.
// Other events get no key.
func OrderKey(q queue.Event) string {
	if q.Kind != QueueKindChat {
		return ""
	}
	e, err := DecodeEvent(q)
	switch {
	case err != nil:
		return ""
	case e.Phone != "":
		return PhoneOrderKey(e.Phone)
	case e.Chat.ID != "":
		return e.Chat.Key()
	}
	return ""
}

// PhoneOrderKey is the ordering key of everything about the client with this number; the
// call events use it too, so a client's calls and chats are handled in order.
func PhoneOrderKey(p crm.Phone) string { return "phone:" + string(p) }
