package intake

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/routing"
)

// CRM is what the engine reads and writes; *amocrm.Client is one.
type CRM interface {
	// The Directory also resolves a returning client when no WithClients is given.
	crm.Directory
	FindContactsByEmail(ctx context.Context, email string) ([]crm.Contact, error)
	FindContactsByField(ctx context.Context, fieldID int64, value string) ([]crm.Contact, error)
	CreateContacts(ctx context.Context, cs []crm.NewContact) ([]int64, error)
	CreateLeads(ctx context.Context, ls []crm.NewLead) ([]int64, error)
	AddTextNote(ctx context.Context, entity crm.EntityType, id int64, text string) error
	// TextNoteExists reports whether the entity has a plain note with this text: asked
	// only when an interrupted attempt may have added it.
	TextNoteExists(ctx context.Context, entity crm.EntityType, id int64, text string) (bool, error)
	// AddUnsortedForm and AcceptUnsorted are used in unsorted mode only.
	AddUnsortedForm(ctx context.Context, f crm.UnsortedForm) (crm.UnsortedEntry, error)
	AcceptUnsorted(ctx context.Context, uid string, user crm.UserID, statusID int64) (crm.UnsortedEntry, bool, error)
}

// Manager is a CRM user new clients may be distributed to.
type Manager struct {
	User crm.UserID
	// TakesNewClients is false for a manager who keeps their clients but gets no new ones.
	TakesNewClients bool
	Schedule        routing.Schedule
}

type options struct {
	clients   routing.ClientChooser
	managers  []Manager
	chatUser  func(chatUser string) (crm.UserID, bool)
	rotation  Rotation
	now       func() time.Time
	log       zerolog.Logger
	keyPrefix string
}

// Option configures an Engine.
type Option func(*options)

// WithClients resolves which client the contacts a visitor's fields found are, with their
// open deal and owner (the Router, so chats follow routing's precedence); default a
// routing.LiveChooser on the engine's CRM.
func WithClients(c routing.ClientChooser) Option { return func(o *options) { o.clients = c } }

// WithManagers lists the managers groups name, with their flag and schedule; a group
// member missing here is an error of New.
func WithManagers(ms []Manager) Option { return func(o *options) { o.managers = ms } }

// WithChatUsers maps a Jivo agent id to a CRM user (chatbridge.UserMap.CRMUser for Jivo):
// in unsorted mode the agent who accepts a chat accepts its Unsorted entry.
func WithChatUsers(f func(chatUser string) (crm.UserID, bool)) Option {
	return func(o *options) { o.chatUser = f }
}

// WithRotation keeps round-robin turns (default: in memory).
func WithRotation(r Rotation) Option { return func(o *options) { o.rotation = r } }

// WithClock sets the clock schedules are judged by (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger.
func WithLogger(l zerolog.Logger) Option { return func(o *options) { o.log = l } }

// Engine handles online-chat events.
type Engine struct {
	cfg      Config
	crm      CRM
	state    events.State
	opts     options
	rules    []rule
	groups   map[string][]crm.UserID
	managers map[crm.UserID]Manager
	pattern  *regexp.Regexp
}

// New checks cfg (Validate's messages become the error) and builds an Engine.
func New(cfg Config, c CRM, state events.State, opts ...Option) (*Engine, error) {
	if msgs := cfg.Validate(); len(msgs) > 0 {
		return nil, fmt.Errorf("leads: %s", strings.Join(msgs, "; "))
	}
	if c == nil || state == nil {
		return nil, errors.New("leads: a CRM and a state are required")
	}
	o := options{rotation: NewMemoryRotation(), now: time.Now, log: zerolog.Nop(), chatUser: func(string) (crm.UserID, bool) { return 0, false }}
	for _, f := range opts {
		f(&o)
	}
	if o.clients == nil {
		o.clients = routing.LiveChooser(c)
	}
	e := &Engine{cfg: cfg, crm: c, state: state, opts: o, rules: compileRules(cfg.Rules),
		groups: map[string][]crm.UserID{}, managers: map[crm.UserID]Manager{}}
	for _, m := range o.managers {
		e.managers[m.User] = m
	}
	for i, g := range cfg.Groups {
		for j, u := range g.Managers {
			if _, ok := e.managers[u]; !ok {
				return nil, fmt.Errorf("leads: chat.leads.groups[%d].managers[%d]: is %d, which is not in managers:; add the manager (with takes_new_clients and a schedule) or remove them from the group", i, j, u)
			}
		}
		e.groups[g.Name] = g.Managers
	}
	if cfg.Duplicates.CustomFieldPattern != "" {
		e.pattern = regexp.MustCompile(cfg.Duplicates.CustomFieldPattern)
	}
	return e, nil
}

// Result says what handling an event did, for logs and tests.
type Result struct {
	// Skipped is why nothing was done ("" when something was).
	Skipped string
	// Rule names the rule that decided ("default" for none); empty for a returning client.
	Rule string
	// DuplicateBy is the field a returning client was found by; ContactID is then theirs.
	DuplicateBy Field
	ContactID   int64
	// ContactCreated and LeadCreated say whether ContactID and LeadID are new.
	ContactCreated bool
	LeadID         int64
	LeadCreated    bool
	Responsible    crm.UserID
	// NoteOn is where the chat's note went (nil: no note).
	NoteOn *EntityRef
	// UnsortedUID is the Unsorted entry of the chat (unsorted mode); Accepted says this
	// event accepted it.
	UnsortedUID string
	Accepted    bool
	// Repeated is true when the event's work was already done by an earlier delivery.
	Repeated bool
	// Adopted is true when some of it was found in the CRM, written by an earlier attempt
	// that died before recording it, and not written again.
	Adopted bool
}

// EntityRef names a CRM entity.
type EntityRef struct {
	Entity crm.EntityType `json:"entity"`
	ID     int64          `json:"id"`
}
