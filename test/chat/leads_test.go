package chat

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge/intake"
	"github.com/crmlink/crmlink/crm"
	amosandbox "github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
)

// dave is a manager of the sales group who is off today.
const dave = 1004

// jivoVisitor is what Jivo's webhook says of a visitor.
type jivoVisitor struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// postJivo sends a chat_accepted webhook in Jivo's documented shape (event_name, chat_id,
// widget_id, visitor, agent, session{utm_json, geoip}, page) and requires 200.
func (s *stack) postJivo(t *testing.T, chatID int, v jivoVisitor) {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"event_name": "chat_accepted",
		"chat_id":    chatID,
		"widget_id":  "w-main",
		"visitor":    v,
		"agent":      map[string]any{"id": 77, "name": "Jivo agent"},
		"department": map[string]any{"id": 1, "name": "Sales"},
		"session": map[string]any{
			"utm_json": map[string]string{"source": "google", "medium": "cpc"},
			"geoip":    map[string]string{"country": "Russia", "city": "Moscow"},
		},
		"page": map[string]string{"url": "https://shop.example/catalog", "title": "Catalog"},
	})
	require.NoError(t, err)
	res, err := http.Post(s.api+"/v1/chat/jivo/"+jivoSecret, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "crmlink's answer to Jivo's webhook")
}

// withLeads turns on online-chat leads with the sales group (Ann, Dave, Bob, Carol; Dave
// is off today) and the duplicate match given.
func withLeads(match intake.Match) func(*config.Config) {
	return func(cfg *config.Config) {
		today := time.Now().UTC().Format("2006-01-02")
		cfg.Managers = append(cfg.Managers, config.Manager{CRMUser: dave, Name: "Dave", Endpoints: []string{"PJSIP/104"},
			Schedule: config.Schedule{Timezone: "UTC", DaysOff: []string{today}}})
		l := &cfg.Chat.Leads
		l.Enabled = true
		l.Duplicates = intake.Duplicates{By: []intake.Field{intake.FieldPhone, intake.FieldEmail}, Match: match}
		l.Groups = []intake.Group{{Name: "sales", Managers: []crm.UserID{ann, dave, bob, carol}}}
		l.Default = intake.Target{Action: intake.ActionContactAndDeal, Group: "sales"}
	}
}

// clientWithEmail gives the seeded client an email too.
func clientWithEmail(s *stack, t *testing.T) {
	t.Helper()
	seed := s.amo.State()
	for i := range seed.Contacts {
		if seed.Contacts[i].ID == clientID {
			seed.Contacts[i].Emails = []string{"anna.petrova@example.com"}
		}
	}
	require.NoError(t, s.amo.Reseed(seed))
}

func TestJivoReturningClientFoundByPhoneOrEmailGoesToTheExistingResponsible(t *testing.T) {
	s := startStack(t, withLeads(intake.MatchAny))
	clientWithEmail(s, t)

	s.postJivo(t, 9001, jivoVisitor{Name: "Anna", Phone: "+7 916 123-45-67"})
	s.postJivo(t, 9002, jivoVisitor{Name: "Anna P.", Email: "Anna.Petrova@example.com"})
	var created amosandbox.Created
	testrig.WaitFor(t, 5*time.Second, "two notes on the client's open deal", func() bool {
		created = s.amo.Created()
		return len(notesOn(created, "leads", openDeal)) == 2
	})
	waitQueueIdle(t, s)
	created = s.amo.Created()
	require.Empty(t, created.Contacts, "a returning client got a second contact")
	require.Empty(t, created.Leads, "a returning client with an open deal got a new deal")
	require.EqualValues(t, ann, s.responsible(t, "contact", clientID), "the client keeps Ann")
	require.EqualValues(t, ann, s.responsible(t, "lead", openDeal))
}

func TestJivoAllFieldsMustMatchOtherwiseANewContact(t *testing.T) {
	s := startStack(t, withLeads(intake.MatchAll))
	clientWithEmail(s, t)

	// The client's phone but an address no contact has: with AND this is a new client.
	s.postJivo(t, 9101, jivoVisitor{Name: "Namesake", Phone: "89161234567", Email: "someone.else@example.com"})
	var created amosandbox.Created
	testrig.WaitFor(t, 5*time.Second, "a new contact and deal", func() bool {
		created = s.amo.Created()
		return len(created.Contacts) == 1 && len(created.Leads) == 1
	})
	require.Equal(t, []string{"someone.else@example.com"}, created.Contacts[0].Emails)
	require.Empty(t, notesOn(created, "leads", openDeal), "the existing client's deal got the note")

	// Both fields match the same contact: the returning client.
	s.postJivo(t, 9102, jivoVisitor{Name: "Anna", Phone: "89161234567", Email: "anna.petrova@example.com"})
	testrig.WaitFor(t, 5*time.Second, "a note on the client's open deal", func() bool {
		return len(notesOn(s.amo.Created(), "leads", openDeal)) == 1
	})
	waitQueueIdle(t, s)
	require.Len(t, s.amo.Created().Contacts, 1, "the returning client got a contact")
}

func TestJivoNewClientsGoRoundRobinSkippingTheManagerOffSchedule(t *testing.T) {
	s := startStack(t, withLeads(intake.MatchAny))
	visitors := []jivoVisitor{
		{Name: "First", Phone: "+79260000001"},
		{Name: "Second", Email: "second@example.com"},
		{Name: "Third", Phone: "+79260000003"},
	}
	for i, v := range visitors {
		s.postJivo(t, 9201+i, v)
		// One at a time, as clients arrive: each must see the previous one's turn.
		testrig.WaitFor(t, 5*time.Second, "the new client's contact", func() bool { return len(s.amo.Created().Contacts) == i+1 })
	}
	waitQueueIdle(t, s)
	created := s.amo.Created()
	var contactOwners, dealOwners []int64
	for _, c := range created.Contacts {
		contactOwners = append(contactOwners, c.ResponsibleUserID)
	}
	for _, l := range created.Leads {
		dealOwners = append(dealOwners, l.ResponsibleUserID)
	}
	require.Equal(t, []int64{ann, bob, carol}, contactOwners, "round-robin over the group, Dave (off today) skipped")
	require.Equal(t, []int64{ann, bob, carol}, dealOwners)
}

// notesOn lists the created notes on an entity.
func notesOn(c amosandbox.Created, entityType string, id int64) []amosandbox.Note {
	var out []amosandbox.Note
	for _, n := range c.Notes {
		if n.EntityType == entityType && n.EntityID == id {
			out = append(out, n)
		}
	}
	return out
}

func TestJivoLeadAcceptedWhileAmoCRMIsDownSurvivesARestart(t *testing.T) {
	s := startStack(t, withLeads(intake.MatchAny))
	s.amo.FailNext(1_000_000, http.StatusServiceUnavailable)
	start := time.Now()
	s.postJivo(t, 9301, jivoVisitor{Name: "Patient", Phone: "+79260000042"})
	require.Less(t, time.Since(start), 2*time.Second, "Jivo waits 2 s for the answer")
	testrig.WaitFor(t, 10*time.Second, "crmlink trying amoCRM and failing", func() bool {
		return s.amo.Requests("GET /api/v4/contacts") > 0
	})
	s.restart(t)
	require.Empty(t, s.amo.Created().Contacts)

	s.amo.FailNext(0, 0)
	var created amosandbox.Created
	testrig.WaitFor(t, 30*time.Second, "the lead created after the restart", func() bool {
		created = s.amo.Created()
		return len(created.Contacts) == 1 && len(created.Leads) == 1
	})
	waitQueueIdle(t, s)
	created = s.amo.Created()
	require.Len(t, created.Contacts, 1, "exactly one contact")
	require.Len(t, created.Leads, 1, "exactly one deal")
	require.EqualValues(t, ann, created.Leads[0].ResponsibleUserID, "the first manager of the group")
}
