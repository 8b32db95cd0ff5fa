package intake

import (
	"fmt"
	"strings"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
)

// newContact is the contact a new client gets: the visitor's name, phone, email and the
// custom field's value.
func (e *Engine) newContact(ev chatbridge.Event, responsible crm.UserID, chat string) crm.NewContact {
	c := crm.NewContact{Name: clientName(ev), Responsible: responsible, RequestID: chat}
	if ev.Phone != "" {
		c.Phones = []crm.Phone{ev.Phone}
	}
	if email := visitorEmail(ev); email != "" {
		c.Emails = []string{email}
	}
	if v := e.customValue(ev); v != "" {
		c.Fields = []crm.FieldValue{{FieldID: e.cfg.Duplicates.CustomFieldID, Value: v}}
	}
	return c
}

// clientName is how the visitor introduced themselves, else their phone or email.
func clientName(ev chatbridge.Event) string {
	for _, s := range []string{visitorName(ev), ev.ClientName, string(ev.Phone), ev.RawPhone, visitorEmail(ev)} {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return "Visitor"
}

func visitorName(ev chatbridge.Event) string {
	if ev.Visitor == nil {
		return ""
	}
	return ev.Visitor.Name
}

func (e *Engine) leadName(ev chatbridge.Event) string {
	return strings.ReplaceAll(e.cfg.LeadName, "{client}", clientName(ev))
}

// summary is the note a chat leaves: what happened, who the visitor is, where they came
// from and what they wrote.
func (e *Engine) summary(ev chatbridge.Event) string {
	var b strings.Builder
	what := map[chatbridge.EventKind]string{
		chatbridge.EventChatAccepted:   "chat %s accepted",
		chatbridge.EventChatFinished:   "chat %s finished",
		chatbridge.EventOfflineMessage: "offline message%s",
	}[ev.Kind]
	id := ev.Chat.ID
	if ev.Kind == chatbridge.EventOfflineMessage {
		id = ""
	}
	fmt.Fprintf(&b, "%s: "+what, e.cfg.SourceName, id)
	if ev.ChatUserName != "" || ev.ChatUser != "" {
		fmt.Fprintf(&b, " (agent %s)", strings.TrimSpace(ev.ChatUserName+" "+bracket(ev.ChatUser)))
	}
	b.WriteString("\n")
	line := func(label string, parts ...string) {
		var kept []string
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				kept = append(kept, p)
			}
		}
		if len(kept) > 0 {
			fmt.Fprintf(&b, "%s: %s\n", label, strings.Join(kept, ", "))
		}
	}
	phone := string(ev.Phone)
	if phone == "" {
		phone = ev.RawPhone
	}
	line("Client", visitorName(ev), phone, visitorEmail(ev))
	if v := ev.Visitor; v != nil {
		line("About", v.Description)
		if v.ChatsCount > 1 {
			line("Chats so far", fmt.Sprint(v.ChatsCount))
		}
	}
	if o := ev.Origin; o != nil {
		line("Page", o.PageTitle, o.PageURL)
		line("Department", o.Department.Name)
		line("UTM", kv("source", o.UTM.Source), kv("medium", o.UTM.Medium), kv("campaign", o.UTM.Campaign), kv("content", o.UTM.Content), kv("term", o.UTM.Term))
		line("Location", o.Country, o.Region, o.City)
	}
	if ev.Message != nil {
		line("Message", ev.Message.Text)
	}
	return strings.TrimRight(b.String(), "\n")
}

func kv(k, v string) string {
	if v == "" {
		return ""
	}
	return k + "=" + v
}

func bracket(s string) string {
	if s == "" {
		return ""
	}
	return "#" + s
}
