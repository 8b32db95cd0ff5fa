package chatbridge

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/crm"
)

// CRMEntity is the contact or deal made or found for an EventContactWanted or
// EventDealWanted, as the platform's answer needs it.
type CRMEntity struct {
	Type crm.EntityType
	ID   int64
	Name string
	// ChatUser is the platform user responsible (the one the platform asked for).
	ChatUser   string
	ContactIDs []int64
	// URI opens the entity in the CRM ("" when unknown).
	URI string
}

// EntityAnswerer is an Inbound whose platform expects some webhooks answered with the
// CRM entity they asked for (Wazzup).
type EntityAnswerer interface {
	// AnswerEntity is the answer body to the webhook that carried e.
	AnswerEntity(e Event, ent CRMEntity) any
}

// EntityMaker makes or finds the CRM entity an event asks for.
type EntityMaker interface {
	MakeEntity(ctx context.Context, e Event) (CRMEntity, error)
}

// Entities makes the CRM entities chat platforms ask for: the client's contact (found by
// phone, created when there is none) and deals with the responsible the platform chose,
// mapped through chat.users.
type Entities struct {
	dir   crm.Directory
	w     crm.Writer
	users *UserMap
	uri   func(crm.EntityType, int64) string
	log   zerolog.Logger
	now   func() time.Time

	mu sync.Mutex
	// made remembers what a delivery got, so a redelivered createDeal (Wazzup retries a
	// webhook whose answer was lost) gets the same deal, not a second one.
	made map[string]madeEntity
}

type madeEntity struct {
	ent CRMEntity
	at  time.Time
}

// madeKeep is how long a made entity is remembered for redeliveries.
const madeKeep = 30 * time.Minute

// NewEntities builds the maker; uri gives an entity's link in the CRM (nil: none).
func NewEntities(dir crm.Directory, w crm.Writer, users *UserMap, uri func(crm.EntityType, int64) string, log zerolog.Logger) *Entities {
	if uri == nil {
		uri = func(crm.EntityType, int64) string { return "" }
	}
	return &Entities{dir: dir, w: w, users: users, uri: uri, log: log, now: time.Now, made: map[string]madeEntity{}}
}

// MakeEntity implements EntityMaker.
func (m *Entities) MakeEntity(ctx context.Context, e Event) (CRMEntity, error) {
	if ent, ok := m.remembered(e.ID); ok {
		return ent, nil
	}
	crmUser, mapped := m.users.CRMUser(e.Platform, e.ChatUser)
	if !mapped {
		// The CRM then makes the token's user responsible; the answer still names the
		// platform's user, so the chat stays where the platform put it.
		m.log.Warn().Str("platform", string(e.Platform)).Str("chat_user", e.ChatUser).Msg("chat user is not in chat.users: the new CRM entity gets the integration user as responsible")
	}
	var ent CRMEntity
	var err error
	switch e.Kind {
	case EventContactWanted:
		ent, err = m.contact(ctx, e, crmUser)
	case EventDealWanted:
		ent, err = m.deal(ctx, e, crmUser)
	default:
		return CRMEntity{}, fmt.Errorf("chatbridge: %s events ask for no CRM entity", e.Kind)
	}
	if err != nil {
		return CRMEntity{}, err
	}
	ent.ChatUser, ent.URI = e.ChatUser, m.uri(ent.Type, ent.ID)
	m.remember(e.ID, ent)
	return ent, nil
}

// contact finds the client's contact by phone (the oldest when several have it) or
// creates it with the chat's responsible.
func (m *Entities) contact(ctx context.Context, e Event, crmUser crm.UserID) (CRMEntity, error) {
	name := e.ClientName
	if name == "" {
		name = cmp.Or(string(e.Phone), e.RawPhone, "Chat client")
	}
	if e.Phone != "" {
		found, err := m.dir.FindContactsByPhone(ctx, e.Phone)
		if err != nil {
			return CRMEntity{}, fmt.Errorf("chatbridge: contacts with %s: %w", e.Phone, err)
		}
		if len(found) > 0 {
			c := slices.MinFunc(found, func(a, b crm.Contact) int { return cmp.Compare(a.ID, b.ID) })
			return CRMEntity{Type: crm.EntityContact, ID: c.ID, Name: cmp.Or(c.Name, name)}, nil
		}
	}
	nc := crm.NewContact{Name: name, Responsible: crmUser, RequestID: e.ID}
	if e.Phone != "" {
		nc.Phones = []crm.Phone{e.Phone}
	}
	ids, err := m.w.CreateContacts(ctx, []crm.NewContact{nc})
	if err != nil || len(ids) != 1 {
		return CRMEntity{}, fmt.Errorf("chatbridge: create the contact %s asked for: %w", e.Platform, err)
	}
	return CRMEntity{Type: crm.EntityContact, ID: ids[0], Name: name}, nil
}

// deal creates a deal of the contacts with the chat's responsible.
func (m *Entities) deal(ctx context.Context, e Event, crmUser crm.UserID) (CRMEntity, error) {
	var ids []int64
	for _, s := range e.Contacts {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return CRMEntity{}, fmt.Errorf("chatbridge: %s asked for a deal of contact %q, not a CRM contact id: %w", e.Platform, s, ErrBadWebhook)
		}
		ids = append(ids, id)
	}
	name := fmt.Sprintf("Deal from %s chat", e.Platform)
	lids, err := m.w.CreateLeads(ctx, []crm.NewLead{{Name: name, Responsible: crmUser, ContactIDs: ids, RequestID: e.ID}})
	if err != nil || len(lids) != 1 {
		return CRMEntity{}, fmt.Errorf("chatbridge: create the deal %s asked for: %w", e.Platform, err)
	}
	return CRMEntity{Type: crm.EntityLead, ID: lids[0], Name: name, ContactIDs: ids}, nil
}

func (m *Entities) remembered(id string) (CRMEntity, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.made[id]
	if !ok || m.now().Sub(r.at) > madeKeep {
		return CRMEntity{}, false
	}
	return r.ent, true
}

func (m *Entities) remember(id string, ent CRMEntity) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for k, r := range m.made {
		if now.Sub(r.at) > madeKeep {
			delete(m.made, k)
		}
	}
	m.made[id] = madeEntity{ent: ent, at: now}
}
