package scenarios

import (
	"fmt"
	"strings"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// Config is the `scenarios:` section of crmlink.yaml. Start from Defaults, decode the file
// over it (keys left out keep their default), then Validate. Every field has a yaml tag and
// no map is inlined, so a decoder with unknown-key checking (yaml.v3 KnownFields) rejects a
// misspelt key.
type Config struct {
	Incoming Incoming `yaml:"incoming"`
	Missed   Missed   `yaml:"missed"`
	Outgoing Outgoing `yaml:"outgoing"`
	Notes    Notes    `yaml:"notes"`
}

// Incoming calls, by whether the caller's number is on a CRM contact.
type Incoming struct {
	Unknown IncomingUnknown `yaml:"unknown"`
	Known   KnownClient     `yaml:"known"`
}

// IncomingUnknown is what a call from a number no contact holds creates.
type IncomingUnknown struct {
	CreateContact bool `yaml:"create_contact"`
	// CreateDeal needs CreateContact: a deal has no phone of its own, the contact carries it.
	CreateDeal bool `yaml:"create_deal"`
	Mode       Mode `yaml:"mode"`
	// PipelineID and StatusID place the new deal (and the Unsorted entry: its pipeline); 0
	// is the account's main pipeline and its first stage.
	PipelineID  int64    `yaml:"pipeline_id"`
	StatusID    int64    `yaml:"status_id"`
	DealName    string   `yaml:"deal_name"`
	ContactName string   `yaml:"contact_name"`
	Tags        []string `yaml:"tags"`
}

// KnownClient is what a call with a client already in the CRM creates.
type KnownClient struct {
	// CreateDealIfNoOpen creates a deal when none of the contact's deals is open; a client
	// with an open deal never gets a second one from a call.
	CreateDealIfNoOpen bool     `yaml:"create_deal_if_no_open"`
	PipelineID         int64    `yaml:"pipeline_id"`
	StatusID           int64    `yaml:"status_id"`
	DealName           string   `yaml:"deal_name"`
	Tags               []string `yaml:"tags"`
}

// Missed is the call-back task for an incoming call nobody answered.
type Missed struct {
	CreateTask bool `yaml:"create_task"`
	// Deadline is how long the manager has to call back; while it runs, further missed
	// calls from the client create no further task. Write it with a unit (3600s, 1h).
	Deadline time.Duration `yaml:"deadline"`
	TaskText string        `yaml:"task_text"`
	// Responsible for a new client's task (and the deal created with it). A known client's
	// task always goes to the contact's responsible user.
	Responsible Responsible `yaml:"responsible"`
	// DefaultManager is a CRM user id: the responsible under default_manager, and the
	// fallback whenever the rule names nobody (no first operator, no contact responsible).
	DefaultManager crm.UserID `yaml:"default_manager"`
}

// Outgoing calls placed by a manager. Contacts and deals are created only for calls that
// got through: dialling a wrong number should not leave a contact behind.
type Outgoing struct {
	Unknown    OutgoingUnknown `yaml:"unknown"`
	Known      KnownClient     `yaml:"known"`
	Unanswered Unanswered      `yaml:"unanswered"`
}

// OutgoingUnknown is what an answered call to a number no contact holds creates.
type OutgoingUnknown struct {
	CreateContact bool     `yaml:"create_contact"`
	CreateDeal    bool     `yaml:"create_deal"`
	PipelineID    int64    `yaml:"pipeline_id"`
	StatusID      int64    `yaml:"status_id"`
	DealName      string   `yaml:"deal_name"`
	ContactName   string   `yaml:"contact_name"`
	Tags          []string `yaml:"tags"`
}

// Unanswered outgoing calls.
type Unanswered struct {
	// NotReachedNote adds a call_out note with status "not reached" (6) to the client's
	// card; off, only calls that got through leave a note.
	NotReachedNote bool `yaml:"not_reached_note"`
}

// Notes about calls.
type Notes struct {
	// CallNotes adds a call_in/call_out note for every answered call and every missed
	// incoming one (unanswered outgoing calls follow outgoing.unanswered).
	CallNotes bool `yaml:"call_notes"`
	// Source names crmlink on call notes and Unsorted entries.
	Source string `yaml:"source"`
}

// Mode is how a new incoming caller enters the CRM.
type Mode string

const (
	// ModeDirect creates the contact and the deal at once.
	ModeDirect Mode = "direct"
	// ModeUnsorted creates an amoCRM Unsorted (sip) entry; a manager accepting it creates
	// the contact and deal. No second entry is made for a number while one is pending.
	ModeUnsorted Mode = "unsorted"
	// ModeUnsortedUntilAnswered sends missed calls to Unsorted and creates contact and deal
	// at once for answered ones; an answered call whose number's entry still waits accepts
	// that entry as the manager who answered instead.
	ModeUnsortedUntilAnswered Mode = "unsorted_until_answered"
)

// Responsible names who gets a new client's missed-call task.
type Responsible string

const (
	// ResponsibleFirstOperator is the first manager whose phone rang; the default manager
	// when nobody rang.
	ResponsibleFirstOperator Responsible = "first_operator"
	// ResponsibleDefaultManager is missed.default_manager.
	ResponsibleDefaultManager Responsible = "default_manager"
)

// DefaultDeadline is the call-back time users know from Sipuni and MikoPBX.
const DefaultDeadline = time.Hour

// Defaults is the configuration of a file without `scenarios:`: a new caller becomes a
// contact and a deal at once, a known client without an open deal gets one, a missed call
// gets a one-hour call-back task, every call a note. Outgoing calls create nothing but notes
// until switched on (cold-calling a list is a choice).
func Defaults() Config {
	return Config{
		Incoming: Incoming{
			Unknown: IncomingUnknown{
				CreateContact: true,
				CreateDeal:    true,
				Mode:          ModeDirect,
				DealName:      "Call from {phone}",
				ContactName:   "{phone}",
			},
			Known: KnownClient{
				CreateDealIfNoOpen: true,
				DealName:           "Call from {phone}",
			},
		},
		Missed: Missed{
			CreateTask:  true,
			Deadline:    DefaultDeadline,
			TaskText:    "Call back {phone}: missed call at {time}",
			Responsible: ResponsibleFirstOperator,
		},
		Outgoing: Outgoing{
			Unknown: OutgoingUnknown{
				DealName:    "Call to {phone}",
				ContactName: "{phone}",
			},
			Known:      KnownClient{DealName: "Call to {phone}"},
			Unanswered: Unanswered{NotReachedNote: true},
		},
		Notes: Notes{CallNotes: true, Source: "crmlink"},
	}
}

// Limits of the call-back deadline: below a minute nobody can call back, and a bare YAML
// number is read as nanoseconds, which this lower bound catches.
const (
	minDeadline = time.Second
	maxDeadline = 30 * 24 * time.Hour
)

// Validate returns one message per problem, each naming its key under "scenarios." and what
// is allowed; nil when the configuration is usable.
func (c Config) Validate() []string {
	var v problems
	u := c.Incoming.Unknown
	const iu = "scenarios.incoming.unknown."
	switch u.Mode {
	case ModeDirect, ModeUnsorted, ModeUnsortedUntilAnswered:
	default:
		v.add(iu+"mode", "is %q; allowed: direct, unsorted, unsorted_until_answered", u.Mode)
	}
	if u.CreateDeal && !u.CreateContact {
		v.add(iu+"create_deal", "is true while create_contact is false; a deal cannot be created without a contact (the phone number lives on the contact): set create_contact: true or create_deal: false")
	}
	if u.Mode != ModeDirect && u.CreateContact && !u.CreateDeal {
		v.add(iu+"create_deal", "is false with mode %s: a manager accepting an amoCRM Unsorted entry always gets a deal with the contact; set create_deal: true, or mode: direct for a contact alone", u.Mode)
	}
	v.deal(iu, u.PipelineID, u.StatusID, u.DealName, u.Tags, u.CreateDeal)
	v.template(iu+"contact_name", u.ContactName, u.CreateContact)

	v.deal("scenarios.incoming.known.", c.Incoming.Known.PipelineID, c.Incoming.Known.StatusID,
		c.Incoming.Known.DealName, c.Incoming.Known.Tags, c.Incoming.Known.CreateDealIfNoOpen)

	m := c.Missed
	const ms = "scenarios.missed."
	switch m.Responsible {
	case ResponsibleFirstOperator:
	case ResponsibleDefaultManager:
		if m.DefaultManager == 0 && m.CreateTask {
			v.add(ms+"default_manager", "is not set; responsible: default_manager needs the CRM user id of the manager who calls back")
		}
	default:
		v.add(ms+"responsible", "is %q; allowed: first_operator, default_manager", m.Responsible)
	}
	if m.DefaultManager < 0 {
		v.add(ms+"default_manager", "is %d; allowed: a CRM user id (a positive number), or 0 for none", m.DefaultManager)
	}
	if m.Deadline < minDeadline || m.Deadline > maxDeadline {
		v.add(ms+"deadline", "is %s; allowed: 1s to 720h, written with a unit such as 3600s or 1h (a bare number is read as nanoseconds)", m.Deadline)
	}
	v.template(ms+"task_text", m.TaskText, m.CreateTask)

	o := c.Outgoing.Unknown
	const ou = "scenarios.outgoing.unknown."
	if o.CreateDeal && !o.CreateContact {
		v.add(ou+"create_deal", "is true while create_contact is false; a deal cannot be created without a contact (the phone number lives on the contact): set create_contact: true or create_deal: false")
	}
	v.deal(ou, o.PipelineID, o.StatusID, o.DealName, o.Tags, o.CreateDeal)
	v.template(ou+"contact_name", o.ContactName, o.CreateContact)
	v.deal("scenarios.outgoing.known.", c.Outgoing.Known.PipelineID, c.Outgoing.Known.StatusID,
		c.Outgoing.Known.DealName, c.Outgoing.Known.Tags, c.Outgoing.Known.CreateDealIfNoOpen)

	if strings.TrimSpace(c.Notes.Source) == "" {
		v.add("scenarios.notes.source", "is empty; name the source shown on call notes and Unsorted entries, e.g. crmlink")
	}
	return v
}

type problems []string

func (v *problems) add(key, format string, args ...any) {
	*v = append(*v, key+" "+fmt.Sprintf(format, args...))
}

// deal checks where a deal goes and what it is called; prefix ends with a dot.
func (v *problems) deal(prefix string, pipeline, status int64, name string, tags []string, used bool) {
	if pipeline < 0 {
		v.add(prefix+"pipeline_id", "is %d; allowed: a pipeline id, or 0 for the account's main pipeline", pipeline)
	}
	switch {
	case status < 0:
		v.add(prefix+"status_id", "is %d; allowed: a stage id, or 0 for the pipeline's first stage", status)
	case status == crm.StatusWon || status == crm.StatusLost:
		v.add(prefix+"status_id", "is %d, a closed stage (142 won, 143 lost); a new deal must start in an open stage", status)
	case status > 0 && pipeline == 0:
		v.add(prefix+"status_id", "is %d while pipeline_id is 0; set the pipeline_id the stage belongs to", status)
	}
	v.template(prefix+"deal_name", name, used)
	for i, t := range tags {
		if strings.TrimSpace(t) == "" {
			v.add(fmt.Sprintf("%stags[%d]", prefix, i), "is empty; allowed: a tag name")
		}
	}
}

// template checks a name or text template: required when the scenario uses it, and only
// known placeholders.
func (v *problems) template(key, tmpl string, used bool) {
	if used && strings.TrimSpace(tmpl) == "" {
		v.add(key, "is empty; write a template such as %q", "Call from {phone}")
	}
	for _, m := range rePlaceholder.FindAllStringSubmatch(tmpl, -1) {
		if _, ok := placeholders[m[1]]; !ok {
			v.add(key, "uses {%s}; allowed placeholders: %s", m[1], placeholderList)
		}
	}
}
