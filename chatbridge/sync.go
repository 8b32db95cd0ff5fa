package chatbridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/crm"
)

// Links finds the contacts of a lead or a company, which crm.Directory cannot: it reads
// from a contact outward (Contact.LeadIDs, Contact.CompanyID). An amoCRM client answers
// with GET /api/v4/leads/{id}?with=contacts and GET /api/v4/companies/{id}?with=contacts.
// A Directory that also implements Links is used as one.
type Links interface {
	LeadContacts(ctx context.Context, leadID int64) ([]int64, error)
	CompanyContacts(ctx context.Context, companyID int64) ([]int64, error)
}

// Sync is the responsible sync policy between the CRM and the chat platforms registered
// with WithPlatform. Its methods are safe for concurrent use; everything it remembers is
// in the GuardStore, so several instances sharing a RedisGuard behave as one.
type Sync struct {
	cfg       Config
	crmToChat []crm.EntityType
	chatToCRM []crm.EntityType
	dir       crm.Directory
	w         crm.Writer
	links     Links
	guard     GuardStore
	users     *UserMap
	platforms map[PlatformName]Platform
	now       func() time.Time
	region    string
	log       zerolog.Logger
	// assigned counts the chats a CRM change gave a manager (the live page, metrics).
	assigned func(crm.UserID, int)
}

// SyncOption adjusts a Sync.
type SyncOption func(*Sync)

// WithPlatform registers a platform to sync with; a later one of the same name replaces it.
func WithPlatform(p Platform) SyncOption { return func(s *Sync) { s.platforms[p.Name()] = p } }

// WithLinks sets how a lead's or company's contacts are found (see Links).
func WithLinks(l Links) SyncOption { return func(s *Sync) { s.links = l } }

// WithChatsAssigned is told how many chats each CRM change gave its new responsible.
func WithChatsAssigned(f func(crm.UserID, int)) SyncOption { return func(s *Sync) { s.assigned = f } }

// WithClock sets the clock of guard windows and of changes that carry no time.
func WithClock(now func() time.Time) SyncOption { return func(s *Sync) { s.now = now } }

// WithRegion sets the ISO country used to read card phones without a country code
// (default RU).
func WithRegion(r string) SyncOption { return func(s *Sync) { s.region = r } }

// WithLogger logs every handled change.
func WithLogger(l zerolog.Logger) SyncOption { return func(s *Sync) { s.log = l } }

// How long clocks are kept: a client's clock orders changes delivered late; an entity's
// change time tells, when a dialog opens, which selected entity changed last.
const (
	clientClockKeep = 7 * 24 * time.Hour
	changeTimeKeep  = 30 * 24 * time.Hour
)

// NewSync builds the policy from a validated configuration.
func NewSync(cfg Config, dir crm.Directory, w crm.Writer, guard GuardStore, opts ...SyncOption) (*Sync, error) {
	if problems := cfg.Validate(); len(problems) > 0 {
		return nil, fmt.Errorf("chatbridge: invalid configuration:\n%s", strings.Join(problems, "\n"))
	}
	if dir == nil || w == nil || guard == nil {
		return nil, errors.New("chatbridge: NewSync needs a crm.Directory, a crm.Writer and a GuardStore")
	}
	users, err := NewUserMap(cfg.Users)
	if err != nil {
		return nil, err
	}
	s := &Sync{
		cfg: cfg, crmToChat: cfg.CRMToChat.selected(), chatToCRM: cfg.ChatToCRM.selected(),
		dir: dir, w: w, guard: guard, users: users,
		platforms: map[PlatformName]Platform{}, now: time.Now, region: "RU", log: zerolog.Nop(),
	}
	if l, ok := dir.(Links); ok {
		s.links = l
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Users is the user map the Sync was built with.
func (s *Sync) Users() *UserMap { return s.users }

// Outcome says what handling a change did.
type Outcome string

const (
	// OutcomeSynced: the other side was changed (Result.Writes lists how).
	OutcomeSynced Outcome = "synced"
	// OutcomeInSync: the other side already agreed; nothing was written.
	OutcomeInSync Outcome = "in_sync"
	// OutcomeEcho: the change is crmlink's own write coming back; nothing was written.
	OutcomeEcho Outcome = "echo"
	// OutcomeStale: a newer change for the client was already applied.
	OutcomeStale Outcome = "stale"
	// OutcomeIgnored: the configuration does not sync this (direction off, entity type
	// not selected, platform not synced, an event kind the sync does not follow).
	OutcomeIgnored Outcome = "ignored"
	// OutcomeUnmapped: the user has no counterpart in chat.users.
	OutcomeUnmapped Outcome = "unmapped"
	// OutcomeNoClient: no contact, phone, chat or responsible to sync with.
	OutcomeNoClient Outcome = "no_client"
	// OutcomeFailed: every write failed; the error says why and the event is retried.
	OutcomeFailed Outcome = "failed"
)

// Result is what handling one change did.
type Result struct {
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason,omitempty"`
	// Writes are the writes made, in order.
	Writes []Write `json:"writes,omitempty"`
	// Truncated is true when chat.max_writes stopped the writes early.
	Truncated bool `json:"truncated,omitempty"`
}

// Write is one write: Value (a CRM user id, a chat user id) set on Target ("crm:lead:17",
// "chat:wazzup:501").
type Write struct {
	Target string `json:"target"`
	Value  string `json:"value"`
}

// ChatWrites is how many chats a result gave a new responsible.
func ChatWrites(r Result) int {
	n := 0
	for _, w := range r.Writes {
		if strings.HasPrefix(w.Target, "chat:") {
			n++
		}
	}
	return n
}

func result(o Outcome, format string, args ...any) Result {
	return Result{Outcome: o, Reason: fmt.Sprintf(format, args...)}
}

func crmTarget(e crm.EntityType, id int64) string {
	return "crm:" + string(e) + ":" + strconv.FormatInt(id, 10)
}
func clientKey(contactID int64) string { return "client:" + strconv.FormatInt(contactID, 10) }
func changedKey(e crm.EntityType, id int64) string {
	return "changed:" + string(e) + ":" + strconv.FormatInt(id, 10)
}
func userValue(u crm.UserID) string { return strconv.FormatInt(int64(u), 10) }

// echo reports whether value on target is crmlink's own write coming back: a mark with
// that value still holds. A mark with another value means a person changed the target
// after crmlink wrote it; the mark is dropped so that a person setting crmlink's value
// again within the window is not mistaken for the echo.
func (s *Sync) echo(ctx context.Context, target, value string, now time.Time) (bool, error) {
	v, ok, err := s.guard.Marked(ctx, target, now)
	if err != nil || !ok {
		return false, err
	}
	if v == value {
		return true, nil
	}
	return false, s.guard.Unmark(ctx, target)
}

// current keeps the contacts for which a change at `at` is not older than the latest one
// applied (and records it as the latest).
func (s *Sync) current(ctx context.Context, contacts []crm.Contact, at time.Time) ([]crm.Contact, error) {
	var out []crm.Contact
	for _, c := range contacts {
		ok, err := s.guard.Advance(ctx, clientKey(c.ID), at, clientClockKeep)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// client collects the phones (E.164) and ids of contacts; unreadable phones are skipped.
func (s *Sync) client(contacts []crm.Contact) Client {
	var c Client
	for _, ct := range contacts {
		if !slices.Contains(c.ContactIDs, ct.ID) {
			c.ContactIDs = append(c.ContactIDs, ct.ID)
		}
		for _, raw := range ct.Phones {
			p, err := crm.ParsePhone(raw, s.region)
			if err == nil && !slices.Contains(c.Phones, p) {
				c.Phones = append(c.Phones, p)
			}
		}
	}
	return c
}

// assignChats makes the chat user mapped to crmUser responsible for every chat of the
// contacts' client on the given platforms (all registered ones when only is empty).
func (s *Sync) assignChats(ctx context.Context, contacts []crm.Contact, crmUser crm.UserID, only PlatformName) (Result, error) {
	client := s.client(contacts)
	now := s.now()
	var res Result
	var errs []error
	var unmapped []string
	chats := 0
platforms:
	for _, name := range slices.Sorted(maps.Keys(s.platforms)) {
		if only != "" && name != only {
			continue
		}
		p := s.platforms[name]
		chatUser, ok := s.users.ChatUser(name, crmUser)
		if !ok {
			unmapped = append(unmapped, string(name))
			continue
		}
		refs, err := p.ChatsOfClient(ctx, client)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: chats of contacts %v: %w", name, client.ContactIDs, err))
			continue
		}
		chats += len(refs)
		for _, ref := range refs {
			if ref.Platform == "" {
				ref.Platform = name
			}
			if ref.Responsible == chatUser {
				continue
			}
			if len(res.Writes) >= s.cfg.MaxWrites {
				res.Truncated = true
				break platforms
			}
			// Mark before writing: the platform may report the change before it answers.
			if err := s.guard.Mark(ctx, ref.Key(), chatUser, now.Add(s.cfg.GuardWindow)); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := p.AssignResponsible(ctx, ref, chatUser); err != nil {
				errs = append(errs, fmt.Errorf("%s: assign %s to chat %s: %w", name, chatUser, ref.ID, err))
				continue
			}
			res.Writes = append(res.Writes, Write{Target: ref.Key(), Value: chatUser})
		}
	}
	switch {
	case len(res.Writes) > 0:
		res.Outcome, res.Reason = OutcomeSynced, fmt.Sprintf("CRM user %d given %d chat(s)", crmUser, len(res.Writes))
	case len(errs) > 0:
		res = result(OutcomeFailed, "no chat could be assigned")
	case len(unmapped) > 0 && chats == 0:
		res = result(OutcomeUnmapped, "CRM user %d has no chat user on %s in chat.users", crmUser, strings.Join(unmapped, ", "))
	case chats == 0:
		res = result(OutcomeNoClient, "the client (contacts %v) has no chats on the synced platforms", client.ContactIDs)
	default:
		res = result(OutcomeInSync, "the client's %d chat(s) already have CRM user %d's chat user", chats, crmUser)
	}
	return res, errors.Join(errs...)
}

func (s *Sync) logResult(ev *zerolog.Event, res Result, err error) {
	ev = ev.Str("outcome", string(res.Outcome)).Str("reason", res.Reason).Int("writes", len(res.Writes))
	if res.Truncated {
		ev = ev.Bool("truncated", true)
	}
	if err != nil {
		ev = ev.Err(err)
	}
	ev.Msg("responsible sync")
}

func (s *Sync) logEvent(err error) *zerolog.Event {
	if err != nil {
		return s.log.Warn()
	}
	return s.log.Info()
}

// byTime orders candidate responsibles: latest change first, then the order the entity
// types are selected in.
func byTime(order []crm.EntityType) func(a, b candidate) int {
	return func(a, b candidate) int {
		return cmp.Or(b.changed.Compare(a.changed), cmp.Compare(slices.Index(order, a.entity), slices.Index(order, b.entity)),
			cmp.Compare(a.id, b.id))
	}
}

type candidate struct {
	entity      crm.EntityType
	id          int64
	responsible crm.UserID
	changed     time.Time
}
