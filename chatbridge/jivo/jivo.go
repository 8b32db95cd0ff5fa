// Package jivo reads Jivo (JivoSite, JivoChat) webhooks: one URL, JSON POSTs told apart by
// event_name. crmlink uses them for online-chat leads (duplicate detection by phone and
// email, rules on utm, page and department), so everything those need is parsed; Jivo has
// no API crmlink writes to, so the adapter is Inbound only.
//
// Documented payload fields used: chat_id, widget_id, visitor{name, email, phone, number,
// description, chats_count}, agent{id, name, email, phone}, department{id, name},
// session{geoip{...}, utm ("source=google|medium=cpc"), utm_json{source, medium,
// campaign, content, term}, ip_addr, user_agent}, page{url, title}. Assumed: agents[] on
// chat_finished when agent is absent, message (the text) and offline_message_id on
// offline_message, geoip{country, region, city}. Jivo signs nothing, so the webhook URL
// given to Jivo ends with the shared secret.
package jivo

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/internal/jsonid"
	"github.com/crmlink/crmlink/crm"
)

// Options configure a Webhooks reader.
type Options struct {
	// Secret is the last path segment of the webhook URL given to Jivo.
	Secret string
	// Region reads visitor numbers without a country code (default RU).
	Region string
	// Now stamps events (Jivo sends no event time); default time.Now.
	Now func() time.Time
}

// Webhooks reads Jivo webhooks; it implements chatbridge.Inbound.
type Webhooks struct {
	secret string
	region string
	now    func() time.Time
}

// New builds a reader.
func New(o Options) (*Webhooks, error) {
	if o.Secret == "" {
		return nil, errors.New("jivo: no webhook secret: webhooks could not be authenticated")
	}
	if o.Region == "" {
		o.Region = "RU"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Webhooks{secret: o.Secret, region: o.Region, now: o.Now}, nil
}

// Name implements chatbridge.Inbound.
func (w *Webhooks) Name() chatbridge.PlatformName { return chatbridge.Jivo }

// Payload is a Jivo webhook body.
type Payload struct {
	EventName        string     `json:"event_name"`
	ChatID           jsonid.ID  `json:"chat_id,omitempty"`
	WidgetID         jsonid.ID  `json:"widget_id,omitempty"`
	OfflineMessageID jsonid.ID  `json:"offline_message_id,omitempty"`
	Message          string     `json:"message,omitempty"`
	Visitor          Visitor    `json:"visitor"`
	Agent            *Agent     `json:"agent,omitempty"`
	Agents           []Agent    `json:"agents,omitempty"`
	Department       Department `json:"department"`
	Session          Session    `json:"session"`
	Page             Page       `json:"page"`
}

// Visitor is the site visitor.
type Visitor struct {
	Name        string `json:"name,omitempty"`
	Email       string `json:"email,omitempty"`
	Phone       string `json:"phone,omitempty"`
	Number      string `json:"number,omitempty"`
	Description string `json:"description,omitempty"`
	ChatsCount  int    `json:"chats_count,omitempty"`
}

// Agent is a Jivo operator.
type Agent struct {
	ID    jsonid.ID `json:"id"`
	Name  string    `json:"name,omitempty"`
	Email string    `json:"email,omitempty"`
	Phone string    `json:"phone,omitempty"`
}

// Department is a group of operators.
type Department struct {
	ID   jsonid.ID `json:"id,omitempty"`
	Name string    `json:"name,omitempty"`
}

// Session is the visitor's browsing session.
type Session struct {
	GeoIP     GeoIP   `json:"geoip"`
	UTM       string  `json:"utm,omitempty"`
	UTMJSON   UTMJSON `json:"utm_json"`
	IPAddr    string  `json:"ip_addr,omitempty"`
	UserAgent string  `json:"user_agent,omitempty"`
}

// GeoIP is the visitor's location by IP.
type GeoIP struct {
	Country string `json:"country,omitempty"`
	Region  string `json:"region,omitempty"`
	City    string `json:"city,omitempty"`
}

// UTMJSON is the utm tags as an object.
type UTMJSON struct {
	Source   string `json:"source,omitempty"`
	Medium   string `json:"medium,omitempty"`
	Campaign string `json:"campaign,omitempty"`
	Content  string `json:"content,omitempty"`
	Term     string `json:"term,omitempty"`
}

// Page is the page the chat started on.
type Page struct {
	URL   string `json:"url,omitempty"`
	Title string `json:"title,omitempty"`
}

// ParseWebhook implements chatbridge.Inbound: chat_accepted gives EventChatAccepted
// (ChatUser is the agent), chat_finished EventChatFinished, offline_message
// EventOfflineMessage (Message is the text). Other event names (chat_assigned,
// chat_updated, client_updated, call_event, ...) give nothing.
func (w *Webhooks) ParseWebhook(r *http.Request) ([]chatbridge.Event, error) {
	body, err := chatbridge.ReadWebhook(r, chatbridge.Jivo, func(r *http.Request) error { return chatbridge.CheckPathSecret(r, w.secret) })
	if err != nil {
		return nil, err
	}
	return w.Parse(body)
}

// Parse reads an authenticated webhook body.
func (w *Webhooks) Parse(body []byte) ([]chatbridge.Event, error) {
	var p Payload
	if err := chatbridge.DecodeOne(body, chatbridge.Jivo, &p); err != nil {
		return nil, err
	}
	if p.EventName == "" {
		return nil, fmt.Errorf("jivo webhook: %w: no event_name", chatbridge.ErrBadWebhook)
	}
	var kind chatbridge.EventKind
	switch p.EventName {
	case "chat_accepted":
		kind = chatbridge.EventChatAccepted
	case "chat_finished":
		kind = chatbridge.EventChatFinished
	case "offline_message":
		kind = chatbridge.EventOfflineMessage
	default:
		return nil, nil
	}
	if kind != chatbridge.EventOfflineMessage && p.ChatID == "" {
		return nil, fmt.Errorf("jivo webhook: %w: %s without chat_id", chatbridge.ErrBadWebhook, p.EventName)
	}
	e := chatbridge.Event{
		Platform: chatbridge.Jivo, Kind: kind, At: w.now().UTC(),
		Chat:       chatbridge.ChatRef{Platform: chatbridge.Jivo, ID: string(p.ChatID)},
		ClientName: p.Visitor.Name,
		Visitor: &chatbridge.Visitor{Name: p.Visitor.Name, Email: strings.TrimSpace(p.Visitor.Email), Phone: p.Visitor.Phone,
			Number: strings.TrimSpace(p.Visitor.Number), Description: p.Visitor.Description, ChatsCount: p.Visitor.ChatsCount},
		Origin: origin(p),
	}
	agent := p.Agent
	if agent == nil && len(p.Agents) > 0 {
		agent = &p.Agents[0]
	}
	if agent != nil {
		e.ChatUser, e.ChatUserName = string(agent.ID), agent.Name
	}
	raw := strings.TrimSpace(p.Visitor.Phone)
	if raw == "" {
		raw = strings.TrimSpace(p.Visitor.Number)
	}
	if raw != "" {
		e.RawPhone = raw
		if ph, err := crm.ParsePhone(raw, w.region); err == nil {
			e.Phone = ph
		}
	}
	switch kind {
	case chatbridge.EventOfflineMessage:
		e.Message = &chatbridge.Message{ID: string(p.OfflineMessageID), Text: p.Message, Inbound: true}
		if p.OfflineMessageID != "" {
			e.ID = "jivo:offline:" + string(p.OfflineMessageID)
		} else {
			e.ID = chatbridge.DigestID(chatbridge.Jivo, p.EventName, string(p.WidgetID), raw, e.Visitor.Email, p.Message)
		}
	default:
		e.ID = "jivo:" + p.EventName + ":" + string(p.ChatID)
	}
	return []chatbridge.Event{e}, nil
}

func origin(p Payload) *chatbridge.Origin {
	o := &chatbridge.Origin{
		WidgetID:   string(p.WidgetID),
		Department: chatbridge.Department{ID: string(p.Department.ID), Name: p.Department.Name},
		UTMRaw:     p.Session.UTM,
		UTM:        chatbridge.UTM(p.Session.UTMJSON),
		PageURL:    p.Page.URL, PageTitle: p.Page.Title,
		IP: p.Session.IPAddr, UserAgent: p.Session.UserAgent,
		Country: p.Session.GeoIP.Country, Region: p.Session.GeoIP.Region, City: p.Session.GeoIP.City,
	}
	// utm_json wins; the "source=google|medium=cpc" string fills what it lacks.
	for _, kv := range strings.Split(p.Session.UTM, "|") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		var f *string
		switch strings.TrimPrefix(strings.TrimSpace(k), "utm_") {
		case "source":
			f = &o.UTM.Source
		case "medium":
			f = &o.UTM.Medium
		case "campaign":
			f = &o.UTM.Campaign
		case "content":
			f = &o.UTM.Content
		case "term":
			f = &o.UTM.Term
		}
		if f != nil && *f == "" {
			*f = v
		}
	}
	return o
}

var _ chatbridge.Inbound = (*Webhooks)(nil)
