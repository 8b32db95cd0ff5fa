// Package wazzup is the chatbridge adapter for Wazzup's public API v3: webhooks in
// (messages, createContact, createDeal, and contact entities with their
// responsibleUserId), contacts and users out.
//
// In API v3 the integration is the CRM: a Wazzup contact's id is the CRM contact's id and
// its responsibleUserId is the integration's user id (the `wazzup:` ids of chat.users). A
// contact's responsible decides whose Wazzup chat window shows the client's dialogs, so
// assigning a chat is an upsert of the contact (POST /v3/contacts) with a new
// responsibleUserId.
//
// Documented facts used, with their pages:
//
//   - Bearer API key; POST /v3/contacts takes at most 100 contacts {id, responsibleUserId,
//     name, contactData[{chatType, chatId}], uri}:
//     https://wazzup24.com/help/api-en/working-with-contacts/
//   - Deals {id, responsibleUserId, name, uri, contacts, closed}:
//     https://wazzup24.com/help/api-en/working-with-a-list-of-deals/
//   - GET /v3/users: https://wazzup24.com/help/api-en/working-with-the-user-entity/
//   - Webhooks (https://wazzup24.com/help/webhooks/): PATCH /v3/webhooks {webhooksUri,
//     subscriptions}; deliveries are POSTed as JSON with "Authorization: Bearer
//     <crmKey>"; one delivery may carry messages and statuses; a connection test posts
//     {"test": true}; the message fields below; createContact {responsibleUserId, name,
//     contactData, source} and createDeal {responsibleUserId, contacts, source} come one
//     per delivery, when a new client writes (the chat goes to the first to answer or to
//     the next in turn) or an employee presses "+" in the Deals list, and the CRM answers
//     each with 200 and the new entity as the contacts and deals routes take it (crmlink:
//     the contact found by phone or created, the deal created with the responsible named).
//
// Assumed (not in the captured docs): GET /v3/contacts/{id} returns the contact entity;
// GET /v3/users pages with ?offset= by 100; and a "contacts" delivery of contact entities
// when a person reassigns a contact in Wazzup (Wazzup documents no such webhook; the
// adapter reads it if it comes). Documented, a chat's responsible reaches the CRM only
// through createContact and createDeal.
package wazzup

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/internal/apiclient"
)

// DefaultAPIURL is Wazzup's API.
const DefaultAPIURL = "https://api.wazzup24.com"

// Options configure a Client.
type Options struct {
	// APIURL defaults to DefaultAPIURL; point it at the chat sandbox in tests.
	APIURL string
	// APIKey is the account's API key, sent as "Authorization: Bearer <key>". Without one
	// the Client only reads webhooks; API calls fail with chatbridge.ErrUnauthorized.
	APIKey string
	// CRMKey is the secret Wazzup sends with every webhook as "Authorization: Bearer
	// <crmKey>" (chat.platforms[].webhook_secret).
	CRMKey string
	// HTTPClient sends API requests; default a plain client. Timeout bounds one request.
	HTTPClient *http.Client
	Timeout    time.Duration
	// Region reads numbers without a country code (default RU).
	Region string
	// Now stamps events that carry no time (default time.Now).
	Now func() time.Time
}

// Client is the Wazzup adapter; it implements chatbridge.Platform.
type Client struct {
	api    *apiclient.Client
	crmKey string
	region string
	now    func() time.Time
}

// New checks the options and builds a Client.
func New(o Options) (*Client, error) {
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	if o.CRMKey == "" {
		return nil, errors.New("wazzup: no crmKey (webhook secret): webhooks could not be authenticated")
	}
	auth := ""
	if o.APIKey != "" {
		auth = "Bearer " + o.APIKey
	}
	api, err := apiclient.New(chatbridge.Wazzup, o.APIURL, auth, o.HTTPClient, o.Timeout)
	if err != nil {
		return nil, err
	}
	if o.Region == "" {
		o.Region = "RU"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Client{api: api, crmKey: o.CRMKey, region: o.Region, now: o.Now}, nil
}

// Name implements chatbridge.Inbound.
func (c *Client) Name() chatbridge.PlatformName { return chatbridge.Wazzup }

// Contact is Wazzup's contact entity.
type Contact struct {
	ID                string        `json:"id"`
	ResponsibleUserID string        `json:"responsibleUserId"`
	Name              string        `json:"name"`
	ContactData       []ContactData `json:"contactData"`
	URI               string        `json:"uri,omitempty"`
}

// ContactData is one messenger account of a contact.
type ContactData struct {
	ChatType string `json:"chatType"`
	ChatID   string `json:"chatId,omitempty"`
	Username string `json:"username,omitempty"`
	Phone    string `json:"phone,omitempty"`
}

// User is Wazzup's user entity.
type User struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Phone string `json:"phone,omitempty"`
}

// Contact reads one contact by id (the CRM contact id); chatbridge.ErrNotFound when Wazzup
// has none.
func (c *Client) Contact(ctx context.Context, id string) (Contact, error) {
	var ct Contact
	err := c.api.Do(ctx, http.MethodGet, "/v3/contacts/"+url.PathEscape(id), nil, nil, &ct)
	return ct, err
}

// UpsertContacts adds or updates contacts, at most 100 per request as Wazzup allows.
func (c *Client) UpsertContacts(ctx context.Context, cs []Contact) error {
	for len(cs) > 0 {
		n := min(len(cs), MaxPerRequest)
		if err := c.api.Do(ctx, http.MethodPost, "/v3/contacts", nil, cs[:n], nil); err != nil {
			return err
		}
		cs = cs[n:]
	}
	return nil
}

// MaxPerRequest is Wazzup's limit of entities in one POST.
const MaxPerRequest = 100

// ChatsOfClient implements chatbridge.Platform: the Wazzup contacts whose id is one of
// the client's CRM contact ids. Wazzup keys contacts by CRM id, so phones are not needed.
func (c *Client) ChatsOfClient(ctx context.Context, cl chatbridge.Client) ([]chatbridge.ChatRef, error) {
	var out []chatbridge.ChatRef
	for _, id := range cl.ContactIDs {
		ct, err := c.Contact(ctx, strconv.FormatInt(id, 10))
		if apiclient.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ref := refOf(ct)
		ref.Read = &ct
		out = append(out, ref)
	}
	return out, nil
}

func refOf(ct Contact) chatbridge.ChatRef {
	ref := chatbridge.ChatRef{Platform: chatbridge.Wazzup, ID: ct.ID, Name: ct.Name, Responsible: ct.ResponsibleUserID}
	if len(ct.ContactData) > 0 {
		ref.ChatType, ref.ChatID = ct.ContactData[0].ChatType, ct.ContactData[0].ChatID
	}
	return ref
}

// AssignResponsible implements chatbridge.Platform: it writes the contact back with the
// new responsibleUserId, so its name and messenger accounts stay as they are. The contact
// ChatsOfClient just read is reused (one GET per change); a ChatRef from elsewhere is
// read first.
func (c *Client) AssignResponsible(ctx context.Context, chat chatbridge.ChatRef, chatUser string) error {
	if chat.ID == "" || chatUser == "" {
		return fmt.Errorf("wazzup: assign needs a contact id and a user id (got %q, %q): %w", chat.ID, chatUser, chatbridge.ErrRejected)
	}
	var ct Contact
	if read, ok := chat.Read.(*Contact); ok && read != nil && read.ID == chat.ID {
		ct = *read
	} else {
		var err error
		if ct, err = c.Contact(ctx, chat.ID); err != nil {
			return err
		}
	}
	ct.ResponsibleUserID = chatUser
	return c.UpsertContacts(ctx, []Contact{ct})
}

// Users implements chatbridge.Platform.
func (c *Client) Users(ctx context.Context) ([]chatbridge.ChatUser, error) {
	var out []chatbridge.ChatUser
	for offset := 0; ; offset += MaxPerRequest {
		var page []User
		if err := c.api.Do(ctx, http.MethodGet, "/v3/users", url.Values{"offset": {strconv.Itoa(offset)}}, nil, &page); err != nil {
			return nil, err
		}
		for _, u := range page {
			out = append(out, chatbridge.ChatUser{ID: u.ID, Name: u.Name, Phone: u.Phone})
		}
		if len(page) < MaxPerRequest {
			return out, nil
		}
	}
}

// Subscriptions are the webhook types to receive.
type Subscriptions struct {
	MessagesAndStatuses      bool `json:"messagesAndStatuses"`
	ContactsAndDealsCreation bool `json:"contactsAndDealsCreation"`
	ChannelsUpdates          bool `json:"channelsUpdates"`
	TemplateStatus           bool `json:"templateStatus"`
}

// SetWebhooks points the account's webhooks at uri (at most 200 characters); Wazzup tests
// it with {"test": true} before answering.
func (c *Client) SetWebhooks(ctx context.Context, uri string, subs Subscriptions) error {
	if len(uri) > 200 {
		return fmt.Errorf("wazzup: webhooks URI is %d characters; Wazzup takes at most 200: %w", len(uri), chatbridge.ErrRejected)
	}
	body := struct {
		WebhooksURI   string        `json:"webhooksUri"`
		Subscriptions Subscriptions `json:"subscriptions"`
	}{uri, subs}
	return c.api.Do(ctx, http.MethodPatch, "/v3/webhooks", nil, body, nil)
}

var _ chatbridge.Platform = (*Client)(nil)
