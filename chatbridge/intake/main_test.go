package intake_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/intake"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/routing"
)

func TestMain(m *testing.M) { testrig.Main(m) }

// The sandbox account: the token acts as admin; four sales managers; three clients.
const (
	admin  int64      = 1
	first  crm.UserID = 11
	second crm.UserID = 12
	third  crm.UserID = 13
	nights crm.UserID = 14 // works 22:00-06:00 UTC: off schedule at t0

	// Anna: contact 501 (responsible second) with open deal 601 and a closed one.
	annaPhone          = crm.Phone("+79161112233")
	annaEmail          = "anna@example.com"
	annaID       int64 = 501
	annaOpenDeal int64 = 601
	// Boris: contact 502 (responsible third), only a won deal 603, INN 7701234567.
	borisPhone       = crm.Phone("+79162223344")
	borisID    int64 = 502
	borisINN         = "7701234567"

	innField = "ИНН"
)

// t0 is a Monday, 10:00 UTC: the day managers are at work, the night manager is not.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func seed() sandbox.Seed {
	return sandbox.Seed{
		APIUserID: admin,
		Users: []sandbox.User{
			{ID: admin, Name: "Integration"}, {ID: int64(first), Name: "First"}, {ID: int64(second), Name: "Second"},
			{ID: int64(third), Name: "Third"}, {ID: int64(nights), Name: "Nights"},
		},
		Contacts: []sandbox.Contact{
			{ID: annaID, Name: "Anna", ResponsibleUserID: int64(second), Phones: []string{"8 (916) 111-22-33"}, Emails: []string{"Anna@Example.com"}, LeadIDs: []int64{annaOpenDeal, 602}},
			{ID: borisID, Name: "Boris", ResponsibleUserID: int64(third), Phones: []string{"+7 916 222-33-44"}, LeadIDs: []int64{603},
				Fields: map[string]string{innField: borisINN}},
			// Mentions Anna's address in a comment: the search finds it, crmlink must not.
			{ID: 503, Name: "Anna's assistant", ResponsibleUserID: int64(first), Fields: map[string]string{"Комментарий": "пишите на anna@example.com"}},
		},
		Leads: []sandbox.Lead{
			{ID: annaOpenDeal, Name: "Sofa", StatusID: 5101, PipelineID: 5001, ResponsibleUserID: int64(second)},
			{ID: 602, Name: "Chair", StatusID: crm.StatusWon, PipelineID: 5001, ResponsibleUserID: int64(second)},
			{ID: 603, Name: "Table", StatusID: crm.StatusWon, PipelineID: 5001, ResponsibleUserID: int64(third)},
		},
	}
}

// New entities get ids after the seed's largest (603), in one sequence.
const (
	new1 int64 = 604 + iota
	new2
	new3
	new4
	new5
	new6
)

type rig struct {
	sb     *sandbox.Server
	client *amocrm.Client
	state  *events.MemoryState
}

func newRig(t *testing.T) *rig {
	t.Helper()
	sb := sandbox.New(seed(), sandbox.WithRateLimit(-1))
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	t.Cleanup(sb.Close)
	c, err := amocrm.New(amocrm.Options{BaseURL: ts.URL, Token: sandbox.DefaultToken, RateLimit: 1000})
	require.NoError(t, err)
	return &rig{sb: sb, client: c, state: events.NewMemoryState()}
}

func (r *rig) innFieldID(t *testing.T) int64 {
	t.Helper()
	id, ok := r.sb.FieldID(innField)
	require.True(t, ok)
	return id
}

// managers: three day managers and one night manager, all taking new clients.
func managers(t *testing.T) []intake.Manager {
	t.Helper()
	day, err := routing.ParseSchedule(routing.ScheduleSpec{Timezone: "UTC", Hours: "09:00-18:00"})
	require.NoError(t, err)
	night, err := routing.ParseSchedule(routing.ScheduleSpec{Timezone: "UTC", Hours: "22:00-06:00"})
	require.NoError(t, err)
	return []intake.Manager{
		{User: first, TakesNewClients: true, Schedule: day}, {User: second, TakesNewClients: true, Schedule: day},
		{User: third, TakesNewClients: true, Schedule: day}, {User: nights, TakesNewClients: true, Schedule: night},
	}
}

// config: on, one sales group of all four managers as the default.
func config() intake.Config {
	c := intake.Defaults()
	c.Enabled = true
	c.Groups = []intake.Group{{Name: "sales", Managers: []crm.UserID{first, second, third, nights}}}
	c.Default.Group = "sales"
	return c
}

func (r *rig) engine(t *testing.T, cfg intake.Config, opts ...intake.Option) *intake.Engine {
	t.Helper()
	e, err := intake.New(cfg, r.client, r.state, append([]intake.Option{intake.WithManagers(managers(t))}, opts...)...)
	require.NoError(t, err)
	return e
}

// chat is a Jivo chat_accepted from a visitor, as the jivo adapter parses it.
func chat(id string, phone crm.Phone, email string) chatbridge.Event {
	return chatbridge.Event{
		ID: "jivo:chat_accepted:" + id, Platform: chatbridge.Jivo, Kind: chatbridge.EventChatAccepted, At: t0,
		Chat: chatbridge.ChatRef{Platform: chatbridge.Jivo, ID: id}, Phone: phone, RawPhone: string(phone),
		ChatUser: "4410", ChatUserName: "Bob", ClientName: "Visitor " + id,
		Visitor: &chatbridge.Visitor{Name: "Visitor " + id, Email: email, Phone: string(phone)},
		Origin: &chatbridge.Origin{WidgetID: "w1", PageURL: "https://shop.example/sofas", PageTitle: "Sofas",
			UTM: chatbridge.UTM{Source: "google", Medium: "cpc"}, Country: "Russia", City: "Moscow"},
	}
}

func handle(t *testing.T, e *intake.Engine, ev chatbridge.Event) intake.Result {
	t.Helper()
	res, err := e.Handle(context.Background(), ev)
	require.NoError(t, err)
	return res
}
