package wazzup

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
)

// Webhook is a Wazzup webhook delivery: an object whose properties are the webhook types.
type Webhook struct {
	Test          bool            `json:"test,omitempty"`
	Messages      []Message       `json:"messages,omitempty"`
	Statuses      []Status        `json:"statuses,omitempty"`
	CreateContact *CreateContact  `json:"createContact,omitempty"`
	CreateDeal    *CreateDeal     `json:"createDeal,omitempty"`
	Contacts      []Contact       `json:"contacts,omitempty"`
	Channels      json.RawMessage `json:"channelsUpdates,omitempty"`
	Templates     json.RawMessage `json:"templateStatus,omitempty"`
}

// Message is one message of a messages webhook.
type Message struct {
	MessageID string `json:"messageId"`
	// DateTime is RFC 3339 ("2026-03-02T10:00:00.000Z").
	DateTime  string `json:"dateTime,omitempty"`
	ChannelID string `json:"channelId,omitempty"`
	ChatType  string `json:"chatType"`
	ChatID    string `json:"chatId"`
	Type      string `json:"type,omitempty"`
	// IsEcho is true for an outgoing message (sent by an employee), false for an incoming one.
	IsEcho     bool           `json:"isEcho"`
	Text       string         `json:"text,omitempty"`
	ContentURI string         `json:"contentUri,omitempty"`
	Status     string         `json:"status,omitempty"`
	AuthorID   string         `json:"authorId,omitempty"`
	AuthorName string         `json:"authorName,omitempty"`
	Contact    MessageContact `json:"contact,omitzero"`
}

// MessageContact is the client as a message webhook names them.
type MessageContact struct {
	Name     string `json:"name,omitempty"`
	Username string `json:"username,omitempty"`
	Phone    string `json:"phone,omitempty"`
}

// Status is a delivery status update of an outgoing message; crmlink does not use them.
type Status struct {
	MessageID string `json:"messageId"`
	Timestamp string `json:"timestamp,omitempty"`
	Status    string `json:"status"`
}

// CreateContact asks the CRM to create a contact for a new client's chat; its
// responsibleUserId is the user Wazzup gave the chat to.
type CreateContact struct {
	ResponsibleUserID string        `json:"responsibleUserId"`
	Name              string        `json:"name"`
	ContactData       []ContactData `json:"contactData"`
	Source            string        `json:"source,omitempty"`
}

// CreateDeal asks the CRM to create a deal for contacts; lead creation reads it.
type CreateDeal struct {
	ResponsibleUserID string   `json:"responsibleUserId"`
	Contacts          []string `json:"contacts"`
	Source            string   `json:"source,omitempty"`
}

// ParseWebhook implements chatbridge.Inbound. Events: an inbound message (EventMessage,
// Inbound), an employee's message (EventMessage with ChatUser = authorId), createContact
// (EventContactWanted, answered with the contact, and EventResponsibleAssigned: the chat
// went to responsibleUserId), createDeal (EventDealWanted, answered with the deal), each
// contact of a "contacts" delivery (EventResponsibleAssigned, Chat.ID = the contact id).
// Statuses, channel and template updates and the connection test give no events.
func (c *Client) ParseWebhook(r *http.Request) ([]chatbridge.Event, error) {
	body, err := chatbridge.ReadWebhook(r, chatbridge.Wazzup, func(r *http.Request) error { return chatbridge.CheckBearer(r, c.crmKey) })
	if err != nil {
		return nil, err
	}
	return c.parse(body)
}

func (c *Client) parse(body []byte) ([]chatbridge.Event, error) {
	var wh Webhook
	if err := chatbridge.DecodeOne(body, chatbridge.Wazzup, &wh); err != nil {
		return nil, err
	}
	if !wh.Test && wh.Messages == nil && wh.Statuses == nil && wh.CreateContact == nil && wh.CreateDeal == nil &&
		wh.Contacts == nil && wh.Channels == nil && wh.Templates == nil {
		return nil, fmt.Errorf("wazzup webhook: %w: none of test, messages, statuses, createContact, createDeal, contacts, channelsUpdates, templateStatus", chatbridge.ErrBadWebhook)
	}
	received := c.now().UTC()
	var out []chatbridge.Event
	for i, m := range wh.Messages {
		e, err := c.message(m, received)
		if err != nil {
			return nil, fmt.Errorf("wazzup webhook: messages[%d]: %w", i, err)
		}
		out = append(out, e)
	}
	if cc := wh.CreateContact; cc != nil {
		if cc.ResponsibleUserID == "" || len(cc.ContactData) == 0 {
			return nil, fmt.Errorf("wazzup webhook: %w: createContact needs responsibleUserId and contactData", chatbridge.ErrBadWebhook)
		}
		d := cc.ContactData[0]
		e := chatbridge.Event{
			ID:       chatbridge.DigestID(chatbridge.Wazzup, "createContact", cc.ResponsibleUserID, d.ChatType, d.ChatID, d.Username, d.Phone),
			Platform: chatbridge.Wazzup, Kind: chatbridge.EventResponsibleAssigned, At: received,
			Chat:     chatbridge.ChatRef{Platform: chatbridge.Wazzup, ChatType: d.ChatType, ChatID: d.ChatID, Name: cc.Name, Responsible: cc.ResponsibleUserID},
			ChatUser: cc.ResponsibleUserID, ClientName: cc.Name,
		}
		e.Phone, e.RawPhone = c.phoneOf(d)
		wanted := e
		wanted.Kind, wanted.ID = chatbridge.EventContactWanted, e.ID+":contact"
		out = append(out, wanted, e)
	}
	if cd := wh.CreateDeal; cd != nil {
		if cd.ResponsibleUserID == "" || len(cd.Contacts) == 0 {
			return nil, fmt.Errorf("wazzup webhook: %w: createDeal needs responsibleUserId and contacts", chatbridge.ErrBadWebhook)
		}
		parts := append([]string{"createDeal", cd.ResponsibleUserID, cd.Source}, cd.Contacts...)
		out = append(out, chatbridge.Event{
			ID:       chatbridge.DigestID(chatbridge.Wazzup, parts...),
			Platform: chatbridge.Wazzup, Kind: chatbridge.EventDealWanted, At: received,
			Chat:     chatbridge.ChatRef{Platform: chatbridge.Wazzup, ID: cd.Contacts[0], Responsible: cd.ResponsibleUserID},
			ChatUser: cd.ResponsibleUserID, Contacts: cd.Contacts,
		})
	}
	for i, ct := range wh.Contacts {
		if ct.ID == "" {
			return nil, fmt.Errorf("wazzup webhook: %w: contacts[%d] has no id", chatbridge.ErrBadWebhook, i)
		}
		e := chatbridge.Event{
			ID:       chatbridge.DigestID(chatbridge.Wazzup, "contact", ct.ID, ct.ResponsibleUserID, strconv.FormatInt(received.UnixMilli(), 10)),
			Platform: chatbridge.Wazzup, Kind: chatbridge.EventResponsibleAssigned, At: received,
			Chat: refOf(ct), ChatUser: ct.ResponsibleUserID, ClientName: ct.Name,
		}
		for _, d := range ct.ContactData {
			if e.Phone, e.RawPhone = c.phoneOf(d); e.Phone != "" {
				break
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func (c *Client) message(m Message, received time.Time) (chatbridge.Event, error) {
	if m.MessageID == "" || m.ChatType == "" {
		return chatbridge.Event{}, fmt.Errorf("%w: a message needs messageId and chatType", chatbridge.ErrBadWebhook)
	}
	at := received
	if m.DateTime != "" {
		t, err := time.Parse(time.RFC3339Nano, m.DateTime)
		if err != nil {
			return chatbridge.Event{}, fmt.Errorf("%w: dateTime %q is not RFC 3339", chatbridge.ErrBadWebhook, m.DateTime)
		}
		at = t.UTC()
	}
	e := chatbridge.Event{
		ID:       "wazzup:msg:" + m.MessageID,
		Platform: chatbridge.Wazzup, Kind: chatbridge.EventMessage, At: at,
		Chat:       chatbridge.ChatRef{Platform: chatbridge.Wazzup, ChatType: m.ChatType, ChatID: m.ChatID, Name: m.Contact.Name},
		ClientName: m.Contact.Name,
		Message:    &chatbridge.Message{ID: m.MessageID, Text: m.Text, Inbound: !m.IsEcho, Type: m.Type},
	}
	if m.IsEcho {
		e.ChatUser, e.ChatUserName = m.AuthorID, m.AuthorName
	}
	e.Phone, e.RawPhone = c.phoneOf(ContactData{ChatType: m.ChatType, ChatID: m.ChatID, Phone: m.Contact.Phone})
	return e, nil
}

// phoneOf reads the client's phone from a messenger account: a WhatsApp chatId is the
// number's digits, a Telegram contact may carry a phone.
func (c *Client) phoneOf(d ContactData) (crm.Phone, string) {
	raw := d.Phone
	if raw == "" && d.ChatType == "whatsapp" {
		raw = d.ChatID
	}
	// Wazzup writes numbers as international digits without "+".
	return chatbridge.MessengerPhone(raw, c.region)
}

// Deal is Wazzup's deal entity (POST /v3/deals).
type Deal struct {
	ID                string   `json:"id"`
	ResponsibleUserID string   `json:"responsibleUserId"`
	Name              string   `json:"name"`
	URI               string   `json:"uri,omitempty"`
	Contacts          []string `json:"contacts"`
	Closed            bool     `json:"closed"`
}

// AnswerEntity implements chatbridge.EntityAnswerer: Wazzup expects the answer to
// createContact and createDeal to be the new entity as its contacts and deals routes
// take it (https://wazzup24.com/help/webhooks/).
func (c *Client) AnswerEntity(e chatbridge.Event, ent chatbridge.CRMEntity) any {
	id := strconv.FormatInt(ent.ID, 10)
	if e.Kind == chatbridge.EventDealWanted {
		d := Deal{ID: id, ResponsibleUserID: ent.ChatUser, Name: ent.Name, URI: ent.URI, Contacts: []string{}}
		for _, cid := range ent.ContactIDs {
			d.Contacts = append(d.Contacts, strconv.FormatInt(cid, 10))
		}
		return d
	}
	ct := Contact{ID: id, ResponsibleUserID: ent.ChatUser, Name: ent.Name, URI: ent.URI, ContactData: []ContactData{}}
	if e.Chat.ChatType != "" {
		ct.ContactData = append(ct.ContactData, ContactData{ChatType: e.Chat.ChatType, ChatID: e.Chat.ChatID})
	}
	return ct
}

var _ chatbridge.EntityAnswerer = (*Client)(nil)
