package intake

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
)

// Mode says who makes a new client's responsible.
type Mode string

const (
	// ModeDirect: crmlink creates the contact and deal and gives them to the next manager
	// of the rule's group.
	ModeDirect Mode = "direct"
	// ModeUnsorted: crmlink puts the request into amoCRM's Unsorted; the first manager to
	// accept it (in amoCRM, or by accepting the chat in Jivo) becomes responsible.
	ModeUnsorted Mode = "unsorted"
)

// Action is what a rule does with a new client.
type Action string

const (
	ActionContactAndDeal Action = "contact_and_deal"
	ActionContactOnly    Action = "contact_only"
	ActionIgnore         Action = "ignore"
)

// Field is a contact field duplicate detection compares.
type Field string

const (
	FieldPhone       Field = "phone"
	FieldEmail       Field = "email"
	FieldCustomField Field = "custom_field"
)

// Match combines the duplicate fields.
type Match string

const (
	// MatchAny: a contact matching on any one field is the client.
	MatchAny Match = "any"
	// MatchAll: the contact must match on every field the visitor gave.
	MatchAll Match = "all"
)

// NoOpenDeal is what a returning client without an open deal gets.
type NoOpenDeal string

const (
	// NoOpenDealCreateDeal: a new deal for the client's responsible, with the note.
	NoOpenDealCreateDeal NoOpenDeal = "create_deal"
	// NoOpenDealNote: only the note, on the contact.
	NoOpenDealNote NoOpenDeal = "note_on_contact"
)

// Form names a lead rule's `form` condition matches: a chat, or Jivo's offline form.
const (
	FormChat    = "chat"
	FormOffline = "offline"
)

// Config is the `chat.leads:` section of crmlink.yaml. Start from Defaults, decode over it,
// then Validate. Every field has a yaml tag and no map is inlined, so a decoder with
// unknown-key checking rejects a misspelt key.
type Config struct {
	Enabled bool `yaml:"enabled"`
	Mode    Mode `yaml:"mode"`
	// Events are the chat events that create leads: chat_accepted, offline_message,
	// chat_finished. A chat_finished always adds its summary to what its chat created.
	Events         []chatbridge.EventKind `yaml:"events"`
	Duplicates     Duplicates             `yaml:"duplicates"`
	ExistingClient ExistingClient         `yaml:"existing_client"`
	// Rules are tried in order; the first whose conditions all hold decides. None: Default.
	Rules   []Rule  `yaml:"rules"`
	Default Target  `yaml:"default"`
	Groups  []Group `yaml:"groups"`
	// DefaultResponsible takes a new client when nobody in the group is available (0:
	// amoCRM gives it to crmlink's own user).
	DefaultResponsible crm.UserID `yaml:"default_responsible"`
	// SourceName names the source in Unsorted and notes.
	SourceName string `yaml:"source_name"`
	// LeadName names new deals; {client} is the visitor's name, phone or email.
	LeadName string `yaml:"lead_name"`
	// Remember is how long what a chat created is remembered (later events of the chat
	// and redeliveries find it).
	Remember time.Duration `yaml:"remember"`
}

// Duplicates configures returning-client detection.
type Duplicates struct {
	By    []Field `yaml:"by"`
	Match Match   `yaml:"match"`
	// CustomFieldID is the amoCRM field (an INN) compared when by lists custom_field.
	CustomFieldID int64 `yaml:"custom_field_id"`
	// CustomFieldName names it in notes and logs.
	CustomFieldName string `yaml:"custom_field_name"`
	// CustomFieldPattern finds the field's value in what the visitor wrote (the visitor's
	// description, then the message): the first group, or the whole match.
	CustomFieldPattern string `yaml:"custom_field_pattern"`
}

// ExistingClient configures what a returning client gets.
type ExistingClient struct {
	NoOpenDeal NoOpenDeal `yaml:"no_open_deal"`
}

// Rule is a named target with conditions.
type Rule struct {
	Name   string `yaml:"name"`
	When   When   `yaml:"when"`
	Target `yaml:",inline"`
}

// Target is what a rule (or the default) does with a new client.
type Target struct {
	Action     Action `yaml:"action"`
	PipelineID int64  `yaml:"pipeline_id"`
	StatusID   int64  `yaml:"status_id"`
	// Group distributes the client; empty: the default's group.
	Group string   `yaml:"group"`
	Tags  []string `yaml:"tags"`
}

// When holds a rule's conditions: every listed key must hold, and a key holds when any of
// its values matches. Values compare without case; * and ? are wildcards. Page and
// location values match as substrings too; external numbers by their digits.
type When struct {
	// Source is the platform (jivo) or the chat widget id.
	Source      []string `yaml:"source"`
	UTMSource   []string `yaml:"utm_source"`
	UTMMedium   []string `yaml:"utm_medium"`
	UTMCampaign []string `yaml:"utm_campaign"`
	// Form is chat or offline (Jivo's offline message form).
	Form []string `yaml:"form"`
	// ExternalNumber is the widget's number of the visitor (Jivo's visitor.number).
	ExternalNumber []string `yaml:"external_number"`
	Department     []string `yaml:"department"`
	// Page matches the page URL or title.
	Page []string `yaml:"page"`
	// Location matches the country, region or city.
	Location []string `yaml:"location"`
}

// Group is a team new clients are distributed among.
type Group struct {
	Name     string       `yaml:"name"`
	Managers []crm.UserID `yaml:"managers"`
}

// Defaults of Config.
const (
	DefaultSourceName = "Jivo"
	DefaultLeadName   = "Jivo: {client}"
	DefaultRemember   = 30 * 24 * time.Hour
)

// Defaults: off; direct mode; leads from accepted chats and offline messages; a client
// found by phone or email is returning; a returning client without an open deal gets a
// new one; a new client gets a contact and a deal.
func Defaults() Config {
	return Config{
		Mode:           ModeDirect,
		Events:         []chatbridge.EventKind{chatbridge.EventChatAccepted, chatbridge.EventOfflineMessage},
		Duplicates:     Duplicates{By: []Field{FieldPhone, FieldEmail}, Match: MatchAny},
		ExistingClient: ExistingClient{NoOpenDeal: NoOpenDealCreateDeal},
		Default:        Target{Action: ActionContactAndDeal},
		SourceName:     DefaultSourceName,
		LeadName:       DefaultLeadName,
		Remember:       DefaultRemember,
	}
}

// Validate returns one message per problem, each naming its key under "chat.leads." and
// what is allowed; nil when the configuration is usable.
func (c Config) Validate() []string {
	var v problems
	if c.Mode != ModeDirect && c.Mode != ModeUnsorted {
		v.add("mode", "is %q; allowed: direct, unsorted", c.Mode)
	}
	if c.Enabled && len(c.Events) == 0 {
		v.add("events", "is empty while chat.leads.enabled is true; list at least one of chat_accepted, offline_message, chat_finished")
	}
	for i, k := range c.Events {
		switch k {
		case chatbridge.EventChatAccepted, chatbridge.EventOfflineMessage, chatbridge.EventChatFinished:
		default:
			v.add(fmt.Sprintf("events[%d]", i), "is %q; allowed: chat_accepted, offline_message, chat_finished", k)
		}
	}
	v.duplicates(c.Duplicates)
	if c.ExistingClient.NoOpenDeal != NoOpenDealCreateDeal && c.ExistingClient.NoOpenDeal != NoOpenDealNote {
		v.add("existing_client.no_open_deal", "is %q; allowed: create_deal, note_on_contact", c.ExistingClient.NoOpenDeal)
	}
	groups := v.groups(c.Groups)
	names := map[string]int{}
	for i, r := range c.Rules {
		k := fmt.Sprintf("rules[%d]", i)
		if strings.TrimSpace(r.Name) == "" {
			v.add(k+".name", "is empty; name every rule (logs and results name the rule that decided)")
		} else if j, dup := names[r.Name]; dup {
			v.add(k+".name", "is %q, already the name of chat.leads.rules[%d]; names must be unique", r.Name, j)
		} else {
			names[r.Name] = i
		}
		v.target(k, r.Target, groups)
	}
	v.target("default", c.Default, groups)
	if c.DefaultResponsible < 0 {
		v.add("default_responsible", "is %d; allowed: a CRM user id, or 0 for none", c.DefaultResponsible)
	}
	if strings.TrimSpace(c.SourceName) == "" {
		v.add("source_name", "is empty; allowed: a name such as Jivo, shown in Unsorted and notes")
	}
	if c.Remember < time.Hour {
		v.add("remember", "is %s; allowed: 1h or more, written with a unit such as 720h", c.Remember)
	}
	return v
}

type problems []string

func (v *problems) add(key, format string, args ...any) {
	*v = append(*v, "chat.leads."+key+": "+fmt.Sprintf(format, args...))
}

func (v *problems) duplicates(d Duplicates) {
	seen := map[Field]bool{}
	for i, f := range d.By {
		switch f {
		case FieldPhone, FieldEmail, FieldCustomField:
		default:
			v.add(fmt.Sprintf("duplicates.by[%d]", i), "is %q; allowed: phone, email, custom_field", f)
			continue
		}
		if seen[f] {
			v.add(fmt.Sprintf("duplicates.by[%d]", i), "is %q, listed twice; list each field once", f)
		}
		seen[f] = true
	}
	if d.Match != MatchAny && d.Match != MatchAll {
		v.add("duplicates.match", "is %q; allowed: any (one field is enough), all (every field the visitor gave)", d.Match)
	}
	if !seen[FieldCustomField] {
		return
	}
	if d.CustomFieldID <= 0 {
		v.add("duplicates.custom_field_id", "is %d while duplicates.by lists custom_field; allowed: the amoCRM field id (a positive number)", d.CustomFieldID)
	}
	if d.CustomFieldPattern == "" {
		v.add("duplicates.custom_field_pattern", "is empty while duplicates.by lists custom_field; set a regular expression that finds the value, such as \\b(\\d{10}|\\d{12})\\b for an INN")
	} else if _, err := regexp.Compile(d.CustomFieldPattern); err != nil {
		v.add("duplicates.custom_field_pattern", "is not a regular expression: %v", err)
	}
}

func (v *problems) groups(gs []Group) map[string]bool {
	names := map[string]bool{}
	for i, g := range gs {
		k := fmt.Sprintf("groups[%d]", i)
		switch {
		case strings.TrimSpace(g.Name) == "":
			v.add(k+".name", "is empty; name every group (rules name the group they distribute to)")
		case names[g.Name]:
			v.add(k+".name", "is %q, already the name of another group; names must be unique", g.Name)
		}
		names[g.Name] = true
		if len(g.Managers) == 0 {
			v.add(k+".managers", "is empty; list the CRM user ids of the group's managers")
		}
		for j, m := range g.Managers {
			if m <= 0 {
				v.add(fmt.Sprintf("%s.managers[%d]", k, j), "is %d; allowed: a CRM user id (a positive number)", m)
			} else if slices.Index(g.Managers, m) != j {
				v.add(fmt.Sprintf("%s.managers[%d]", k, j), "is %d, listed twice in the group; list each manager once", m)
			}
		}
	}
	return names
}

func (v *problems) target(k string, t Target, groups map[string]bool) {
	switch t.Action {
	case ActionContactAndDeal, ActionContactOnly, ActionIgnore:
	case "":
		v.add(k+".action", "is empty; allowed: contact_and_deal, contact_only, ignore")
	default:
		v.add(k+".action", "is %q; allowed: contact_and_deal, contact_only, ignore", t.Action)
	}
	if t.PipelineID < 0 {
		v.add(k+".pipeline_id", "is %d; allowed: an amoCRM pipeline id, or 0 for the main pipeline", t.PipelineID)
	}
	if t.StatusID < 0 {
		v.add(k+".status_id", "is %d; allowed: an amoCRM status id, or 0 for the pipeline's first stage", t.StatusID)
	}
	if t.Group != "" && !groups[t.Group] {
		v.add(k+".group", "is %q, which is not in chat.leads.groups; allowed: the name of a configured group", t.Group)
	}
}
