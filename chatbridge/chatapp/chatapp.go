// Package chatapp is the chatbridge adapter for ChatApp (ChatApp Dialog): its API for
// the responsible sync, its webhooks in.
//
// Where each shape comes from. Documented (checked against the page named):
//
//   - Access: requests carry "Authorization: <accessToken>". tokens.make takes the
//     account's email, password and appId and answers accessToken (valid 24 hours),
//     accessTokenEndTime, refreshToken (valid 14 days) and refreshTokenEndTime (Unix
//     timestamps); tokens.refresh answers a fresh pair; the pair is to be stored and
//     tokens.make called only when there is none; an invalid token is answered
//     {"success": false, "error": {"code": "ApiInvalidTokenError", "message": "Invalid
//     Token"}}, after which tokens.refresh is called and the request repeated.
//     https://chatapp.online/help/gaining-access-chatapp-api/ (also
//     https://help.chatapp.online/en/wiki_content/access-token-retrieval/).
//   - Events arrive over webhooks or a Pusher-protocol websocket (socket.chatapp.online,
//     private channels private-v1.licenses.{license}.messengers.{type},
//     private-v1.companies.{company}, private-v1.users.{user}); the named events are
//     message (incoming and outgoing), messageStatus, chatTag and chatConversation.
//     https://chatapp.online/help/api-events/
//   - The responsible sync crmlink reproduces (last changed card wins, employees on both
//     sides, 5 s between changes): https://chatapp.online/help/responsible-sync-in-amocrm
//
// Seen in public client code, not on a ChatApp page: tokens.make is POST /v1/tokens with
// the JSON body {email, password, appId}, tokens.refresh is POST /v1/tokens/refresh with
// the refresh token in a "Refresh" header, both answering {"success", "data": {...}};
// webhook URLs are listed by GET /v1/callbackUrls. ChatApp's API reference
// (https://api.chatapp.online/docs/) was not captured.
//
// Assumed (no public schema checked; the chat sandbox speaks the same):
//
//   - tokens.make refuses wrong credentials with a 4xx; the end times may carry
//     fractions (the sandbox's short test lifetimes), whole seconds decode the same.
//   - A chat is GET /v1/licenses/{license}/messengers/{messenger}/chats/{chatId}, answered
//     {"success": true, "data": {"id", "name", "phone", "responsible": {"id", "name"}}};
//     for WhatsApp-type messengers chatId is the client's number in international digits,
//     which is how the adapter finds a client's chats (chats in other messengers are not
//     found by phone).
//   - The responsible is set with PUT .../chats/{chatId}/responsible {"userId": 7}.
//   - Users are GET /v1/users, {"success": true, "data": [{"id", "name", "email"}]}.
//   - Webhooks are POSTed as JSON to a URL that ends with the shared secret, as
//     {"events": [event...]} or one event object; an event is {"id", "type", "licenseId",
//     "messengerType", "time" (Unix seconds), "chat": {...as above}, "message": {"id",
//     "text", "type", "fromMe", "author": {"id", "name"}}}. Of the types, "message" is
//     documented by name; "chatResponsible" (the chat's responsible changed, including
//     changes made through the API) and "chatCreated" are not: ChatApp documents no event
//     for a responsible change, so chat-to-CRM sync from ChatApp rests on this assumption
//     until one is confirmed. Other types (messageStatus, chatTag) are accepted and give
//     no events. User ids may be numbers or strings.
//   - The webhook URL is registered by the administrator (ChatApp's cabinet or its API
//     reference); crmlink does not register it.
package chatapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/internal/apiclient"
	"github.com/crmlink/crmlink/chatbridge/internal/jsonid"
)

// DefaultAPIURL is ChatApp's API.
const DefaultAPIURL = "https://api.chatapp.online"

// Options configure a Client.
type Options struct {
	// APIURL defaults to DefaultAPIURL; point it at the chat sandbox in tests.
	APIURL string
	// Credentials sign in with tokens.make. Without them the Client only reads webhooks;
	// API calls fail with chatbridge.ErrUnauthorized.
	Credentials Credentials
	// Tokens keeps the token pair (default in memory: a restart makes a new pair).
	Tokens TokenStore
	// Key is the configuration key of the platform ("chat.platforms[1]"), for messages
	// that tell what to fix.
	Key string
	// WebhookSecret is the last path segment of the webhook URL given to ChatApp.
	WebhookSecret string
	// Licenses are where a client's chats are looked up.
	Licenses []chatbridge.License
	// HTTPClient sends API requests; default a plain client. Timeout bounds one request.
	HTTPClient *http.Client
	Timeout    time.Duration
	// Region reads numbers without a country code (default RU).
	Region string
	// Now stamps events that carry no time (default time.Now).
	Now func() time.Time
}

// Client is the ChatApp adapter; it implements chatbridge.Platform.
type Client struct {
	api      *apiclient.Client
	tokens   *tokenSource
	secret   string
	licenses []chatbridge.License
	region   string
	now      func() time.Time
}

// New checks the options and builds a Client.
func New(o Options) (*Client, error) {
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	if o.WebhookSecret == "" {
		return nil, errors.New("chatapp: no webhook secret: webhooks could not be authenticated")
	}
	for i, l := range o.Licenses {
		if l.ID == "" || l.Messenger == "" || strings.ContainsAny(l.ID+l.Messenger, "/?#") {
			return nil, fmt.Errorf("chatapp: license %d (%q, %q) needs an id and a messenger type", i, l.ID, l.Messenger)
		}
	}
	api, err := apiclient.New(chatbridge.ChatApp, o.APIURL, "", o.HTTPClient, o.Timeout)
	if err != nil {
		return nil, err
	}
	if o.Region == "" {
		o.Region = "RU"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tokens == nil {
		o.Tokens = &MemoryTokens{}
	}
	if o.Key == "" {
		o.Key = "chatapp"
	}
	c := &Client{api: api, secret: o.WebhookSecret, licenses: o.Licenses, region: o.Region, now: o.Now}
	if o.Credentials != (Credentials{}) {
		c.tokens = &tokenSource{api: api, creds: o.Credentials, store: o.Tokens, key: o.Key, now: o.Now}
	}
	return c, nil
}

// do sends an API request with the current access token; an ApiInvalidTokenError answer
// renews the pair once and the request is sent again.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if c.tokens == nil {
		return fmt.Errorf("chatapp %s %s: no email, password and app_id configured: %w", method, path, chatbridge.ErrUnauthorized)
	}
	token, err := c.tokens.access(ctx)
	if err != nil {
		return err
	}
	err = c.api.DoAs(ctx, token, nil, method, path, nil, in, out)
	if !isInvalidToken(err) {
		return err
	}
	if token, err = c.tokens.rejected(ctx, token); err != nil {
		return err
	}
	return c.api.DoAs(ctx, token, nil, method, path, nil, in, out)
}

// SignIn makes sure there is a valid access token (tokens.make when none is stored), for
// check-config --online and start-up: a refused password is named before the first sync.
func (c *Client) SignIn(ctx context.Context) error {
	if c.tokens == nil {
		return fmt.Errorf("chatapp: no email, password and app_id configured: %w", chatbridge.ErrUnauthorized)
	}
	_, err := c.tokens.access(ctx)
	return err
}

// Health reports whether the last sign-in worked, without asking ChatApp; the detail of a
// refused password names the configuration key.
func (c *Client) Health() (bool, string) {
	if c.tokens == nil {
		return true, "API not configured: webhooks only"
	}
	return c.tokens.health()
}

// Name implements chatbridge.Inbound.
func (c *Client) Name() chatbridge.PlatformName { return chatbridge.ChatApp }

// Chat is a ChatApp chat.
type Chat struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Phone       string `json:"phone,omitempty"`
	Responsible *User  `json:"responsible,omitempty"`
}

// User is a ChatApp employee.
type User struct {
	ID    jsonid.ID `json:"id"`
	Name  string    `json:"name,omitempty"`
	Email string    `json:"email,omitempty"`
}

type envelope[T any] struct {
	Success bool `json:"success"`
	Data    T    `json:"data"`
}

// ChatPath is the API path of a chat, and the chat's ChatRef.ID without "/v1/licenses/".
func ChatPath(license, messenger, chatID string) string {
	return "/v1/licenses/" + url.PathEscape(license) + "/messengers/" + url.PathEscape(messenger) + "/chats/" + url.PathEscape(chatID)
}

// RefID is the ChatRef.ID of a chat: "license/messenger/chatId".
func RefID(license, messenger, chatID string) string {
	return license + "/" + messenger + "/" + chatID
}

func splitRef(id string) (license, messenger, chat string, ok bool) {
	parts := strings.SplitN(id, "/", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// GetChat reads a chat; chatbridge.ErrNotFound when there is none.
func (c *Client) GetChat(ctx context.Context, license, messenger, chatID string) (Chat, error) {
	var env envelope[Chat]
	err := c.do(ctx, http.MethodGet, ChatPath(license, messenger, chatID), nil, &env)
	return env.Data, err
}

// ChatsOfClient implements chatbridge.Platform: the chat with each of the client's
// numbers in each configured license.
func (c *Client) ChatsOfClient(ctx context.Context, cl chatbridge.Client) ([]chatbridge.ChatRef, error) {
	var out []chatbridge.ChatRef
	for _, l := range c.licenses {
		for _, p := range cl.Phones {
			digits := strings.TrimPrefix(string(p), "+")
			ch, err := c.GetChat(ctx, l.ID, l.Messenger, digits)
			if apiclient.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if ch.ID == "" {
				ch.ID = digits
			}
			ref := chatbridge.ChatRef{Platform: chatbridge.ChatApp, ID: RefID(l.ID, l.Messenger, ch.ID),
				ChatType: l.Messenger, ChatID: ch.ID, Name: ch.Name}
			if ch.Responsible != nil {
				ref.Responsible = string(ch.Responsible.ID)
			}
			out = append(out, ref)
		}
	}
	return out, nil
}

// AssignResponsible implements chatbridge.Platform.
func (c *Client) AssignResponsible(ctx context.Context, chat chatbridge.ChatRef, chatUser string) error {
	license, messenger, chatID, ok := splitRef(chat.ID)
	if !ok || chatUser == "" {
		return fmt.Errorf("chatapp: assign needs a license/messenger/chat id and a user (got %q, %q): %w", chat.ID, chatUser, chatbridge.ErrRejected)
	}
	body := struct {
		UserID jsonid.ID `json:"userId"`
	}{jsonid.ID(chatUser)}
	return c.do(ctx, http.MethodPut, ChatPath(license, messenger, chatID)+"/responsible", body, nil)
}

// Users implements chatbridge.Platform.
func (c *Client) Users(ctx context.Context) ([]chatbridge.ChatUser, error) {
	var env envelope[[]User]
	if err := c.do(ctx, http.MethodGet, "/v1/users", nil, &env); err != nil {
		return nil, err
	}
	out := make([]chatbridge.ChatUser, 0, len(env.Data))
	for _, u := range env.Data {
		out = append(out, chatbridge.ChatUser{ID: string(u.ID), Name: u.Name})
	}
	return out, nil
}

var _ chatbridge.Platform = (*Client)(nil)
