package rules_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/routing/rules"
	"github.com/crmlink/crmlink/routing/rules/rulestest"
)

func TestMain(m *testing.M) { testrig.Main(m) }

// t0 is when every test call ends (the clock starts there), so a task due one hour after
// the call is due at t0+1h.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// The client and the office.
const (
	clientDialled = "89161234567" // as Asterisk's CALLERID(num) shows it
	client        = crm.Phone("+79161234567")
	officeDID     = "74951112233"

	firstOperator  crm.UserID = 11
	answeredBy     crm.UserID = 12
	contactOwner   crm.UserID = 13
	defaultManager crm.UserID = 14
	caller         crm.UserID = 15 // the manager who places outgoing calls
)

const (
	ring = 30 * time.Second
	talk = 95 * time.Second
)

// testClock is the engine's and the fake CRM's clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one engine on a fake CRM.
type env struct {
	crm   *rulestest.CRM
	clock *testClock
	state rules.State
	eng   *rules.Engine
}

func newEnv(t testing.TB, cfg rules.Config) *env {
	return newEnvState(t, cfg, rules.NewMemoryState())
}

func newEnvState(t testing.TB, cfg rules.Config, state rules.State) *env {
	t.Helper()
	clk := &testClock{now: t0}
	fake := rulestest.New()
	fake.Now = clk.Now
	e := &env{crm: fake, clock: clk, state: state}
	e.eng = e.engine(t, cfg, fake, fake)
	return e
}

// engine builds another engine on the env's clock and state (another crmlink instance).
func (e *env) engine(t testing.TB, cfg rules.Config, dir crm.Directory, w crm.Writer) *rules.Engine {
	t.Helper()
	eng, err := rules.New(cfg, dir, w, e.state,
		rules.WithRegion("RU"), rules.WithLocation(time.UTC), rules.WithClock(e.clock.Now))
	require.NoError(t, err)
	return eng
}

func (e *env) handle(t testing.TB, o routing.CallOutcome) rules.Result {
	t.Helper()
	res, err := e.eng.HandleCall(context.Background(), o)
	require.NoError(t, err)
	return res
}

// knownClient seeds the client's contact (responsible contactOwner) and returns its id.
func (e *env) knownClient() int64 {
	return e.crm.AddContact(crm.Contact{ID: 501, Name: "Anna Petrova", Responsible: contactOwner,
		Phones: []string{"+7 (916) 123-45-67"}, UpdatedAt: t0.Add(-24 * time.Hour)})
}

// openLead seeds an open deal of the contact.
func (e *env) openLead(contactID int64) int64 {
	return e.crm.AddLead(crm.Lead{ID: 601, Name: "Order #17", PipelineID: 10, StatusID: 100,
		Responsible: contactOwner, UpdatedAt: t0.Add(-time.Hour)}, contactID)
}

// incoming is a call from the client that ends at the clock's now.
func incoming(id string, answered bool) routing.CallOutcome {
	o := routing.CallOutcome{
		ID: id, Direction: routing.Incoming, Caller: clientDialled, Called: officeDID,
		Answered: answered, FirstOperator: firstOperator, RingDuration: ring,
		Start: t0.Add(-ring),
	}
	if answered {
		o.AnsweredBy, o.TalkDuration = answeredBy, talk
		o.Start = t0.Add(-ring - talk)
		o.RecordingURL = "https://pbx.example/rec/" + id + ".mp3"
	}
	return o
}

// outgoing is a call a manager placed to the client.
func outgoing(id string, answered bool) routing.CallOutcome {
	o := routing.CallOutcome{
		ID: id, Direction: routing.Outgoing, Caller: "101", Called: "+7 916 123 45 67",
		Answered: answered, Manager: caller, RingDuration: ring, Start: t0.Add(-ring),
	}
	if answered {
		o.TalkDuration = talk
		o.Start = t0.Add(-ring - talk)
	}
	return o
}

// at moves an outcome so that it ends at end.
func at(o routing.CallOutcome, end time.Time) routing.CallOutcome {
	o.Start = end.Add(-o.RingDuration - o.TalkDuration)
	return o
}

// --- expected entities ------------------------------------------------------------------

func newContact(id int64, name string, resp crm.UserID, outcome string, leadIDs ...int64) rulestest.Contact {
	c := rulestest.Contact{Contact: crm.Contact{ID: id, Name: name, Responsible: resp,
		Phones: []string{string(client)}, UpdatedAt: t0}, RequestID: rules.ActionKey(outcome, rules.KindContact)}
	if len(leadIDs) > 0 {
		c.LeadIDs = leadIDs
	}
	return c
}

func newLead(id int64, name string, resp crm.UserID, contactID int64, outcome string) rulestest.Lead {
	return rulestest.Lead{
		Lead:       crm.Lead{ID: id, Name: name, Responsible: resp, CreatedAt: t0, UpdatedAt: t0},
		ContactIDs: []int64{contactID},
		RequestID:  rules.ActionKey(outcome, rules.KindLead),
	}
}

func newTask(id int64, text string, resp crm.UserID, e crm.EntityType, eid int64, till time.Time, outcome string) rulestest.Task {
	return rulestest.Task{
		Task: crm.Task{ID: id, Text: text, TypeID: crm.TaskTypeCall, Responsible: resp,
			Entity: e, EntityID: eid, CompleteTill: till},
		RequestID: rules.ActionKey(outcome, rules.KindTask),
	}
}

// note is the call note of o; status and result are spelled out by each test.
func note(o routing.CallOutcome, e crm.EntityType, eid int64, status crm.CallStatus, result string) crm.CallNote {
	n := crm.CallNote{Entity: e, EntityID: eid, Uniq: o.ID, Phone: client, Duration: o.TalkDuration,
		Status: status, Result: result, Link: o.RecordingURL, Source: "crmlink"}
	if o.Direction == routing.Incoming {
		n.Direction, n.Responsible = crm.CallIn, o.AnsweredBy
		if !o.Answered {
			n.Responsible = o.FirstOperator // a missed call is credited to the first operator
		}
	} else {
		n.Direction, n.Responsible = crm.CallOut, o.Manager
	}
	return n
}

const (
	callFrom = "Call from +79161234567"
	callTo   = "Call to +79161234567"
)

// missedText is the default task text for a call that started at start.
func missedText(o routing.CallOutcome) string {
	return "Call back +79161234567: missed call at " + o.Start.UTC().Format("15:04")
}
