package scenarios_test

// The scenario switches end to end: the engine, the real amoCRM client and the amoCRM v4
// sandbox, one table per switch group, each row asserting exactly what the sandbox holds
// afterwards (Created), ids included.

import (
	"context"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/eventstest"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/scenarios"
)

// The sandbox account. The user ids are those of main_test.go (firstOperator 11 ...
// caller 15); the API token acts as sbAdmin, which is therefore created_by of everything
// the client writes and the responsible of a note (the client sends none for notes).
const (
	sbAdmin      int64      = 1
	sbOtherOwner crm.UserID = 16 // the responsible of the client with only closed deals

	// A number no contact holds.
	sbNewDialled = "89035550101"
	sbNew        = crm.Phone("+79035550101")
	// Anna: contact 501 (responsible contactOwner) with open deal 601.
	sbAnnaDialled        = "89161112233"
	sbAnna               = crm.Phone("+79161112233")
	sbAnnaID       int64 = 501
	sbAnnaOpenDeal int64 = 601
	// Boris: contact 502 (responsible sbOtherOwner) with deals 602 (won) and 603 (lost).
	sbBorisDialled       = "89162223344"
	sbBoris              = crm.Phone("+79162223344")
	sbBorisID      int64 = 502

	sbRecording = "https://pbx.example/rec/"
)

// The sandbox numbers what a test creates after the seed's largest id (lead 603), in one
// sequence across contacts, leads, tasks, notes and the lead and contact of an Unsorted entry.
const (
	sb1 int64 = 604 + iota
	sb2
	sb3
	sb4
	sb5
	sb6
	sb7
	sb8
)

// Entity types as amoCRM names them in tasks and notes.
const (
	sbLeads    = "leads"
	sbContacts = "contacts"
)

func sbSeed() sandbox.Seed {
	return sandbox.Seed{
		APIUserID: sbAdmin,
		Users: []sandbox.User{
			{ID: sbAdmin, Name: "Integration admin"},
			{ID: int64(firstOperator), Name: "First operator"},
			{ID: int64(answeredBy), Name: "Answering manager"},
			{ID: int64(contactOwner), Name: "Anna's manager"},
			{ID: int64(defaultManager), Name: "Default manager"},
			{ID: int64(caller), Name: "Outbound caller"},
			{ID: int64(sbOtherOwner), Name: "Boris's manager"},
		},
		Contacts: []sandbox.Contact{
			{ID: sbAnnaID, Name: "Anna Petrova", ResponsibleUserID: int64(contactOwner),
				Phones: []string{"+7 (916) 111-22-33"}, LeadIDs: []int64{sbAnnaOpenDeal}},
			{ID: sbBorisID, Name: "Boris Ivanov", ResponsibleUserID: int64(sbOtherOwner),
				Phones: []string{"8 916 222-33-44"}, LeadIDs: []int64{602, 603}},
		},
		Leads: []sandbox.Lead{
			{ID: sbAnnaOpenDeal, Name: "Order #17", PipelineID: sandbox.DefaultPipelineID, StatusID: 5102,
				ResponsibleUserID: int64(contactOwner)},
			{ID: 602, Name: "Order #3", PipelineID: sandbox.DefaultPipelineID, StatusID: crm.StatusWon,
				ResponsibleUserID: int64(sbOtherOwner)},
			{ID: 603, Name: "Order #9", PipelineID: sandbox.DefaultPipelineID, StatusID: crm.StatusLost,
				ResponsibleUserID: int64(sbOtherOwner)},
		},
	}
}

// sbEnv is one engine on the real amoCRM client against a sandbox of its own.
type sbEnv struct {
	srv    *sandbox.Server
	client *amocrm.Client
	clock  *testClock
	state  events.State
	eng    *scenarios.Engine
}

// accountRate is amoCRM's own budget, 7 requests per second, on both the sandbox and the
// client; fastRate lifts both so that tables run quickly, still enforced by the sandbox.
const (
	accountRate = sandbox.DefaultRateLimit
	fastRate    = 1000
)

func newSandboxEnv(t *testing.T, cfg scenarios.Config, rate int) *sbEnv {
	t.Helper()
	seed := sbSeed()
	require.NoError(t, seed.Validate())
	srv := sandbox.New(seed, sandbox.WithRateLimit(rate))
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Close)
	client, err := amocrm.New(amocrm.Options{BaseURL: ts.URL, Token: sandbox.DefaultToken, RateLimit: float64(rate)})
	require.NoError(t, err)
	e := &sbEnv{srv: srv, client: client, clock: &testClock{now: t0}, state: events.NewMemoryState()}
	e.eng = e.engine(t, cfg, e.state)
	t.Cleanup(func() { assert.Zero(t, srv.RateLimited(), "requests the sandbox answered 429") })
	return e
}

// engine builds an engine (another crmlink instance) on the env's client and clock.
func (e *sbEnv) engine(t *testing.T, cfg scenarios.Config, state events.State) *scenarios.Engine {
	t.Helper()
	eng, err := scenarios.New(cfg, e.client, e.client, state,
		scenarios.WithRegion("RU"), scenarios.WithLocation(time.UTC), scenarios.WithClock(e.clock.Now))
	require.NoError(t, err)
	return eng
}

func (e *sbEnv) handle(t *testing.T, o routing.CallOutcome) scenarios.Result {
	t.Helper()
	res, err := e.eng.HandleCall(t.Context(), o)
	require.NoError(t, err, "handle %s: %s", o.ID, res)
	return res
}

var sbUID = regexp.MustCompile(`^[0-9a-f]{40}$`)

// created is srv.Created() with the sandbox's wall-clock stamps (it runs on the real clock,
// the engine on t0) checked and zeroed, and Unsorted uids checked and blanked. It also
// checks that every created lead is linked both ways with its contacts.
func (e *sbEnv) created(t *testing.T) sandbox.Created {
	t.Helper()
	c := e.srv.Created()
	stamp := func(what string, v *int64) {
		t.Helper()
		assert.Positive(t, *v, "%s stamped", what)
		*v = 0
	}
	for i := range c.Contacts {
		stamp("contact created_at", &c.Contacts[i].CreatedAt)
		stamp("contact updated_at", &c.Contacts[i].UpdatedAt)
	}
	for i := range c.Leads {
		stamp("lead created_at", &c.Leads[i].CreatedAt)
		stamp("lead updated_at", &c.Leads[i].UpdatedAt)
	}
	for i := range c.Tasks {
		stamp("task created_at", &c.Tasks[i].CreatedAt)
		stamp("task updated_at", &c.Tasks[i].UpdatedAt)
	}
	for i := range c.Notes {
		stamp("note created_at", &c.Notes[i].CreatedAt)
	}
	for i := range c.Unsorted {
		u := &c.Unsorted[i]
		assert.Regexp(t, sbUID, u.UID)
		u.UID = ""
		stamp("unsorted lead created_at", &u.Lead.CreatedAt)
		stamp("unsorted lead updated_at", &u.Lead.UpdatedAt)
		if u.Contact != nil {
			stamp("unsorted contact created_at", &u.Contact.CreatedAt)
			stamp("unsorted contact updated_at", &u.Contact.UpdatedAt)
		}
		if u.Status != sandbox.UnsortedPending {
			stamp("unsorted decided_at", &u.DecidedAt)
		}
	}
	e.assertLinked(t)
	return c
}

// assertLinked checks, on the account's current data, that every lead a client created
// and every contact it names list each other.
func (e *sbEnv) assertLinked(t *testing.T) {
	t.Helper()
	st := e.srv.State()
	contacts := map[int64]sandbox.Contact{}
	for _, c := range st.Contacts {
		contacts[c.ID] = c
	}
	for _, l := range e.srv.Created().Leads {
		for _, cid := range l.ContactIDs {
			c, ok := contacts[cid]
			if assert.True(t, ok, "lead %d names contact %d, which is not in the account", l.ID, cid) {
				assert.Contains(t, c.LeadIDs, l.ID, "contact %d lists lead %d", cid, l.ID)
			}
		}
	}
}

// leadsOf returns the lead ids on a contact card now (seeded contacts are not in Created).
func (e *sbEnv) leadsOf(id int64) []int64 {
	for _, c := range e.srv.State().Contacts {
		if c.ID == id {
			return c.LeadIDs
		}
	}
	return nil
}

// writes counts the write requests (POST, PATCH, DELETE) the sandbox received.
func (e *sbEnv) writes() int {
	n := 0
	for k, v := range e.srv.RequestCounts() {
		if !strings.HasPrefix(k, "GET ") {
			n += v
		}
	}
	return n
}

func (e *sbEnv) requests() int {
	n := 0
	for _, v := range e.srv.RequestCounts() {
		n += v
	}
	return n
}

// --- outcomes ---------------------------------------------------------------------------

// sbIncoming is a call from the number dialled that ends at t0.
func sbIncoming(id, from string, answered bool) routing.CallOutcome {
	o := routing.CallOutcome{
		ID: id, Direction: routing.Incoming, Caller: from, Called: officeDID,
		Answered: answered, FirstOperator: firstOperator, RingDuration: ring, Start: t0.Add(-ring),
	}
	if answered {
		o.AnsweredBy, o.TalkDuration = answeredBy, talk
		o.Start = t0.Add(-ring - talk)
		o.RecordingURL = sbRecording + id + ".mp3"
	}
	return o
}

// sbOutgoing is a call the manager `caller` placed to the number, ending at t0.
func sbOutgoing(id, to string, answered bool) routing.CallOutcome {
	o := routing.CallOutcome{
		ID: id, Direction: routing.Outgoing, Caller: "101", Called: to,
		Answered: answered, Manager: caller, RingDuration: ring, Start: t0.Add(-ring),
	}
	if answered {
		o.TalkDuration = talk
		o.Start = t0.Add(-ring - talk)
		o.RecordingURL = sbRecording + id + ".mp3"
	}
	return o
}

func noFirstOperator(o routing.CallOutcome) routing.CallOutcome {
	o.FirstOperator = 0
	return o
}

// --- expected entities ------------------------------------------------------------------

func sbContact(id int64, name string, resp crm.UserID, phone crm.Phone, leads ...int64) sandbox.Contact {
	c := sandbox.Contact{ID: id, Name: name, ResponsibleUserID: int64(resp), Phones: []string{string(phone)}}
	if len(leads) > 0 {
		c.LeadIDs = leads
	}
	return c
}

// sbLead is a deal in the main pipeline's first stage linked to one contact.
func sbLead(id int64, name string, resp crm.UserID, contact int64) sandbox.Lead {
	return sandbox.Lead{ID: id, Name: name, PipelineID: sandbox.DefaultPipelineID, StatusID: sandbox.DefaultStatusID,
		ResponsibleUserID: int64(resp), ContactIDs: []int64{contact}}
}

// sbTask is a call-back task; the engine sends the outcome's action key as request_id.
// It is credited (created_by) to the first operator.
func sbTask(id int64, text string, resp crm.UserID, entity string, eid int64, till time.Time, outcome string) sandbox.Task {
	return sandbox.Task{ID: id, Text: text, TaskTypeID: crm.TaskTypeCall, ResponsibleUserID: int64(resp),
		EntityType: entity, EntityID: eid, CompleteTill: till.Unix(),
		RequestID: scenarios.ActionKey(outcome, scenarios.KindTask), CreatedBy: int64(firstOperator)}
}

// sbNote is the call note of o. The client sends notes without request_id (the sandbox
// echoes the index, "0"), credited (created_by, responsible_user_id) to who talked, a
// missed call to the first operator; a note credited to nobody is the token's user's.
func sbNote(id int64, o routing.CallOutcome, phone crm.Phone, entity string, eid int64, status crm.CallStatus, result string) sandbox.Note {
	n := sandbox.Note{ID: id, EntityType: entity, EntityID: eid, NoteType: sandbox.NoteCallIn,
		ResponsibleUserID: sbAdmin, RequestID: "0", CreatedBy: sbAdmin,
		Params: sandbox.NoteParams{Uniq: o.ID, Duration: int64(o.TalkDuration / time.Second), Source: "crmlink",
			Link: o.RecordingURL, Phone: string(phone), CallStatus: int(status), CallResult: result}}
	who := o.AnsweredBy
	switch {
	case o.Direction == routing.Outgoing:
		n.NoteType, who = sandbox.NoteCallOut, o.Manager
	case !o.Answered:
		who = o.FirstOperator
	}
	if who != 0 {
		n.Params.CallResponsible = strconv.FormatInt(int64(who), 10)
		n.ResponsibleUserID, n.CreatedBy = int64(who), int64(who)
	}
	return n
}

// creditedTo credits the call notes and tasks of c to u (created_by; a note's
// responsible_user_id and call_responsible too).
func creditedTo(u crm.UserID, c sandbox.Created) sandbox.Created {
	for i := range c.Tasks {
		c.Tasks[i].CreatedBy = int64(u)
	}
	for i := range c.Notes {
		c.Notes[i].CreatedBy, c.Notes[i].ResponsibleUserID = int64(u), int64(u)
		c.Notes[i].Params.CallResponsible = strconv.FormatInt(int64(u), 10)
	}
	return c
}

func answeredNote(id int64, o routing.CallOutcome, phone crm.Phone, entity string, eid int64) sandbox.Note {
	return sbNote(id, o, phone, entity, eid, crm.CallStatusAnswered, "")
}

func missedNote(id int64, o routing.CallOutcome, phone crm.Phone, entity string, eid int64) sandbox.Note {
	return sbNote(id, o, phone, entity, eid, crm.CallStatusNotReached, scenarios.ResultMissed)
}

// sbUnsorted is the pending sip entry of an incoming call from sbNew with the default
// names; its lead and contact get ids at once but stay out of the account.
func sbUnsorted(o routing.CallOutcome, resp crm.UserID, leadID, contactID int64) sandbox.Unsorted {
	return sandbox.Unsorted{
		SourceUID: o.ID, SourceName: "crmlink", Category: "sip", PipelineID: sandbox.DefaultPipelineID,
		CreatedAt: o.Start.Unix(), Status: sandbox.UnsortedPending, RequestID: o.ID,
		Metadata: sandbox.SipMetadata{Phone: string(sbNew), CalledAt: o.Start.Unix(),
			Duration: int64(o.TalkDuration / time.Second), Link: o.RecordingURL, ServiceCode: "crmlink",
			Uniq: o.ID, IsCallEventNeeded: true, CallResponsible: strconv.FormatInt(int64(resp), 10)},
		Lead: sandbox.Lead{ID: leadID, Name: "Call from " + string(sbNew), PipelineID: sandbox.DefaultPipelineID,
			StatusID: sandbox.DefaultStatusID, ResponsibleUserID: int64(resp)},
		Contact: &sandbox.Contact{ID: contactID, Name: string(sbNew), ResponsibleUserID: int64(resp),
			Phones: []string{string(sbNew)}},
	}
}

// sbMissedText is the default task text of a call that started at o.Start.
func sbMissedText(phone crm.Phone, o routing.CallOutcome) string {
	return "Call back " + string(phone) + ": missed call at " + o.Start.UTC().Format("15:04")
}

// sbWant builds an expected Created with empty (not nil) lists, as the sandbox answers.
func sbWant(c sandbox.Created) sandbox.Created {
	c.Contacts = orEmpty(c.Contacts)
	c.Leads = orEmpty(c.Leads)
	c.Unsorted = orEmpty(c.Unsorted)
	c.Tasks = orEmpty(c.Tasks)
	c.Notes = orEmpty(c.Notes)
	return c
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func sbConfig(edit func(*scenarios.Config)) scenarios.Config {
	cfg := scenarios.Defaults()
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}

// --- incoming.unknown -------------------------------------------------------------------

// TestSandboxIncomingUnknown: incoming.unknown.mode × answered/missed, create_contact,
// create_deal, pipeline, stage, tags and name templates, for a number no contact holds.
func TestSandboxIncomingUnknown(t *testing.T) {
	t.Parallel()
	answered, missed := sbIncoming("u1", sbNewDialled, true), sbIncoming("u1", sbNewDialled, false)
	callFromNew := "Call from " + string(sbNew)
	mode := func(m scenarios.Mode) func(*scenarios.Config) {
		return func(c *scenarios.Config) { c.Incoming.Unknown.Mode = m }
	}
	tests := []struct {
		name   string
		config func(*scenarios.Config)
		o      routing.CallOutcome
		want   sandbox.Created
	}{
		{
			name: "direct answered: contact and deal for who answered, note on the deal", config: mode(scenarios.ModeDirect), o: answered,
			want: sandbox.Created{
				Contacts: []sandbox.Contact{sbContact(sb1, string(sbNew), answeredBy, sbNew, sb2)},
				Leads:    []sandbox.Lead{sbLead(sb2, callFromNew, answeredBy, sb1)},
				Notes:    []sandbox.Note{answeredNote(sb3, answered, sbNew, sbLeads, sb2)},
			},
		},
		{
			name: "direct missed: contact, deal and task for the first operator, note on the deal", config: mode(scenarios.ModeDirect), o: missed,
			want: sandbox.Created{
				Contacts: []sandbox.Contact{sbContact(sb1, string(sbNew), firstOperator, sbNew, sb2)},
				Leads:    []sandbox.Lead{sbLead(sb2, callFromNew, firstOperator, sb1)},
				Tasks:    []sandbox.Task{sbTask(sb3, sbMissedText(sbNew, missed), firstOperator, sbLeads, sb2, t0.Add(time.Hour), "u1")},
				Notes:    []sandbox.Note{missedNote(sb4, missed, sbNew, sbLeads, sb2)},
			},
		},
		{
			name: "unsorted answered: one pending Unsorted entry and nothing else", config: mode(scenarios.ModeUnsorted), o: answered,
			want: sandbox.Created{Unsorted: []sandbox.Unsorted{sbUnsorted(answered, answeredBy, sb1, sb2)}},
		},
		{
			name: "unsorted missed: one pending Unsorted entry, no task without a card", config: mode(scenarios.ModeUnsorted), o: missed,
			want: sandbox.Created{Unsorted: []sandbox.Unsorted{sbUnsorted(missed, firstOperator, sb1, sb2)}},
		},
		{
			name: "unsorted_until_answered answered: contact and deal at once", config: mode(scenarios.ModeUnsortedUntilAnswered), o: answered,
			want: sandbox.Created{
				Contacts: []sandbox.Contact{sbContact(sb1, string(sbNew), answeredBy, sbNew, sb2)},
				Leads:    []sandbox.Lead{sbLead(sb2, callFromNew, answeredBy, sb1)},
				Notes:    []sandbox.Note{answeredNote(sb3, answered, sbNew, sbLeads, sb2)},
			},
		},
		{
			name: "unsorted_until_answered missed: Unsorted only", config: mode(scenarios.ModeUnsortedUntilAnswered), o: missed,
			want: sandbox.Created{Unsorted: []sandbox.Unsorted{sbUnsorted(missed, firstOperator, sb1, sb2)}},
		},
		{
			name: "create_deal off, answered: contact only, note on the contact", o: answered,
			config: func(c *scenarios.Config) { c.Incoming.Unknown.CreateDeal = false },
			want: sandbox.Created{
				Contacts: []sandbox.Contact{sbContact(sb1, string(sbNew), answeredBy, sbNew)},
				Notes:    []sandbox.Note{answeredNote(sb2, answered, sbNew, sbContacts, sb1)},
			},
		},
		{
			name: "create_deal off, missed: task and note on the contact", o: missed,
			config: func(c *scenarios.Config) { c.Incoming.Unknown.CreateDeal = false },
			want: sandbox.Created{
				Contacts: []sandbox.Contact{sbContact(sb1, string(sbNew), firstOperator, sbNew)},
				Tasks:    []sandbox.Task{sbTask(sb2, sbMissedText(sbNew, missed), firstOperator, sbContacts, sb1, t0.Add(time.Hour), "u1")},
				Notes:    []sandbox.Note{missedNote(sb3, missed, sbNew, sbContacts, sb1)},
			},
		},
		{
			name: "create_contact and create_deal off: nothing", o: missed,
			config: func(c *scenarios.Config) {
				c.Incoming.Unknown.CreateContact, c.Incoming.Unknown.CreateDeal = false, false
			},
		},
		{
			name: "own pipeline, stage, tags and name templates", o: answered,
			config: func(c *scenarios.Config) {
				u := &c.Incoming.Unknown
				u.PipelineID, u.StatusID, u.Tags = 77, 7701, []string{"call", "new"}
				u.DealName, u.ContactName = "Inbound {national} on {date}", "Caller {phone} to {called}"
			},
			want: sandbox.Created{
				Contacts: []sandbox.Contact{sbContact(sb1, "Caller +79035550101 to 74951112233", answeredBy, sbNew, sb2)},
				Leads: []sandbox.Lead{{ID: sb2, Name: "Inbound 9035550101 on 2026-03-02", PipelineID: 77, StatusID: 7701,
					ResponsibleUserID: int64(answeredBy), ContactIDs: []int64{sb1}, Tags: []string{"call", "new"}}},
				Notes: []sandbox.Note{answeredNote(sb3, answered, sbNew, sbLeads, sb2)},
			},
		},
		{
			// amoCRM's Unsorted entry always carries a lead, so create_deal off is a
			// configuration error with Unsorted (TestConfigValidate).
			name: "unsorted into pipeline 77", o: answered,
			config: func(c *scenarios.Config) {
				c.Incoming.Unknown.Mode, c.Incoming.Unknown.PipelineID = scenarios.ModeUnsorted, 77
			},
			want: sandbox.Created{Unsorted: []sandbox.Unsorted{func() sandbox.Unsorted {
				u := sbUnsorted(answered, answeredBy, sb1, sb2)
				u.PipelineID, u.Lead.PipelineID = 77, 77
				return u
			}()}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newSandboxEnv(t, sbConfig(tt.config), fastRate)
			res := e.handle(t, tt.o)
			assert.False(t, res.Known)
			assert.Equal(t, sbNew, res.Phone)
			assert.Equal(t, sbWant(tt.want), e.created(t))
		})
	}
}

// TestSandboxUnsortedNotRepeated: while the number's Unsorted entry waits, further calls
// add none; once a manager declines it the next call adds a new one, and once a manager
// accepts it the caller is a known client whose calls go to the accepted deal.
func TestSandboxUnsortedNotRepeated(t *testing.T) {
	t.Parallel()
	c1 := sbIncoming("p1", sbNewDialled, false)
	tests := []struct {
		mode   scenarios.Mode
		accept bool
	}{
		{mode: scenarios.ModeUnsorted},
		{mode: scenarios.ModeUnsortedUntilAnswered},
		{mode: scenarios.ModeUnsorted, accept: true},
		{mode: scenarios.ModeUnsortedUntilAnswered, accept: true},
	}
	for _, tt := range tests {
		name := string(tt.mode) + "/declined"
		if tt.accept {
			name = string(tt.mode) + "/accepted"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newSandboxEnv(t, sbConfig(func(c *scenarios.Config) { c.Incoming.Unknown.Mode = tt.mode }), fastRate)
			first := sbUnsorted(c1, firstOperator, sb1, sb2)

			e.handle(t, c1)
			require.Equal(t, sbWant(sandbox.Created{Unsorted: []sandbox.Unsorted{first}}), e.created(t))

			e.clock.Advance(10 * time.Minute)
			c2 := at(sbIncoming("p2", sbNewDialled, false), e.clock.Now())
			res := e.handle(t, c2)
			assert.Contains(t, res.Reasons, "an Unsorted entry for +79035550101 still waits for a manager: no second one")
			require.Equal(t, sbWant(sandbox.Created{Unsorted: []sandbox.Unsorted{first}}), e.created(t),
				"a second call while the entry waits: still one entry")

			uid := e.srv.Created().Unsorted[0].UID
			e.clock.Advance(10 * time.Minute)
			c3 := at(sbIncoming("p3", sbNewDialled, false), e.clock.Now())
			if !tt.accept {
				_, err := e.srv.DeclineUnsorted(context.Background(), uid, 0)
				require.NoError(t, err)
				res = e.handle(t, c3)
				assert.False(t, res.Known)
				declined := first
				declined.Status, declined.DecidedBy = sandbox.UnsortedDeclined, sbAdmin
				assert.Equal(t, sbWant(sandbox.Created{Unsorted: []sandbox.Unsorted{
					declined, sbUnsorted(c3, firstOperator, sb3, sb4),
				}}), e.created(t), "after the decline: a new pending entry")
				return
			}

			_, err := e.srv.AcceptUnsorted(context.Background(), uid, 0, 0)
			require.NoError(t, err)
			res = e.handle(t, c3)
			assert.True(t, res.Known)
			accepted := first
			accepted.Status, accepted.DecidedBy = sandbox.UnsortedAccepted, sbAdmin
			lead := first.Lead
			lead.ContactIDs = []int64{sb2}
			assert.Equal(t, sbWant(sandbox.Created{
				Contacts: []sandbox.Contact{sbContact(sb2, string(sbNew), firstOperator, sbNew, sb1)},
				Leads:    []sandbox.Lead{lead},
				Unsorted: []sandbox.Unsorted{accepted},
				Tasks:    []sandbox.Task{sbTask(sb3, sbMissedText(sbNew, c3), firstOperator, sbLeads, sb1, e.clock.Now().Add(time.Hour), "p3")},
				Notes:    []sandbox.Note{missedNote(sb4, c3, sbNew, sbLeads, sb1)},
			}), e.created(t), "after the accept: the caller is known, task and note on the accepted deal")
		})
	}
}

// TestSandboxUnsortedUntilAnsweredWhilePending: under unsorted_until_answered an answered
// call from a number whose Unsorted entry (from an earlier missed call) still waits accepts
// that entry, through amoCRM's accept request, instead of creating a second contact and
// deal beside it.
func TestSandboxUnsortedUntilAnsweredWhilePending(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t, sbConfig(func(c *scenarios.Config) { c.Incoming.Unknown.Mode = scenarios.ModeUnsortedUntilAnswered }), fastRate)
	c1 := sbIncoming("a1", sbNewDialled, false)
	e.handle(t, c1)
	e.clock.Advance(10 * time.Minute)
	c2 := at(sbIncoming("a2", sbNewDialled, true), e.clock.Now())
	res := e.handle(t, c2)
	assert.False(t, res.Known)
	// The answered call accepts the missed call's entry as the manager who answered: its
	// contact and deal join the account, and no second contact appears beside them.
	accepted := sbUnsorted(c1, firstOperator, sb1, sb2)
	accepted.Status, accepted.DecidedBy = sandbox.UnsortedAccepted, int64(answeredBy)
	assert.Equal(t, sbWant(sandbox.Created{
		Contacts: []sandbox.Contact{sbContact(sb2, string(sbNew), answeredBy, sbNew, sb1)},
		Leads:    []sandbox.Lead{sbLead(sb1, "Call from "+string(sbNew), answeredBy, sb2)},
		Unsorted: []sandbox.Unsorted{accepted},
		Notes:    []sandbox.Note{answeredNote(sb3, c2, sbNew, sbLeads, sb1)},
	}), e.created(t))
	assert.Equal(t, "accept_unsorted "+strconv.FormatInt(sb1, 10)+" done; note on lead "+strconv.FormatInt(sb1, 10)+" done", res.String())
}

// --- incoming.known ---------------------------------------------------------------------

// TestSandboxIncomingKnown: incoming.known.create_deal_if_no_open and the known deal's
// pipeline, stage, tags and name, for Anna (open deal) and Boris (only closed deals).
func TestSandboxIncomingKnown(t *testing.T) {
	t.Parallel()
	annaAnswered, annaMissed := sbIncoming("k1", sbAnnaDialled, true), sbIncoming("k1", sbAnnaDialled, false)
	borisAnswered, borisMissed := sbIncoming("k1", sbBorisDialled, true), sbIncoming("k1", sbBorisDialled, false)
	callFromBoris := "Call from " + string(sbBoris)
	noDealSwitch := func(c *scenarios.Config) { c.Incoming.Known.CreateDealIfNoOpen = false }
	tests := []struct {
		name      string
		config    func(*scenarios.Config)
		o         routing.CallOutcome
		want      sandbox.Created
		borisLead []int64 // Boris's deals afterwards, when not just the seeded ones
	}{
		{
			name: "open deal, answered: no deal, the note on the open deal", o: annaAnswered,
			want: sandbox.Created{Notes: []sandbox.Note{answeredNote(sb1, annaAnswered, sbAnna, sbLeads, sbAnnaOpenDeal)}},
		},
		{
			name: "open deal, missed: task for the contact's responsible and note, both on the open deal", o: annaMissed,
			want: sandbox.Created{
				Tasks: []sandbox.Task{sbTask(sb1, sbMissedText(sbAnna, annaMissed), contactOwner, sbLeads, sbAnnaOpenDeal, t0.Add(time.Hour), "k1")},
				Notes: []sandbox.Note{missedNote(sb2, annaMissed, sbAnna, sbLeads, sbAnnaOpenDeal)},
			},
		},
		{
			name: "open deal, switch off, answered: the note on the open deal", config: noDealSwitch, o: annaAnswered,
			want: sandbox.Created{Notes: []sandbox.Note{answeredNote(sb1, annaAnswered, sbAnna, sbLeads, sbAnnaOpenDeal)}},
		},
		{
			name: "only closed deals, answered: a new deal for the contact's responsible", o: borisAnswered,
			want: sandbox.Created{
				Leads: []sandbox.Lead{sbLead(sb1, callFromBoris, sbOtherOwner, sbBorisID)},
				Notes: []sandbox.Note{answeredNote(sb2, borisAnswered, sbBoris, sbLeads, sb1)},
			},
			borisLead: []int64{602, 603, sb1},
		},
		{
			name: "only closed deals, missed: a new deal, task and note on it", o: borisMissed,
			want: sandbox.Created{
				Leads: []sandbox.Lead{sbLead(sb1, callFromBoris, sbOtherOwner, sbBorisID)},
				Tasks: []sandbox.Task{sbTask(sb2, sbMissedText(sbBoris, borisMissed), sbOtherOwner, sbLeads, sb1, t0.Add(time.Hour), "k1")},
				Notes: []sandbox.Note{missedNote(sb3, borisMissed, sbBoris, sbLeads, sb1)},
			},
			borisLead: []int64{602, 603, sb1},
		},
		{
			name: "only closed deals, switch off, answered: the note on the contact", config: noDealSwitch, o: borisAnswered,
			want: sandbox.Created{Notes: []sandbox.Note{answeredNote(sb1, borisAnswered, sbBoris, sbContacts, sbBorisID)}},
		},
		{
			name: "only closed deals, switch off, missed: task and note on the contact", config: noDealSwitch, o: borisMissed,
			want: sandbox.Created{
				Tasks: []sandbox.Task{sbTask(sb1, sbMissedText(sbBoris, borisMissed), sbOtherOwner, sbContacts, sbBorisID, t0.Add(time.Hour), "k1")},
				Notes: []sandbox.Note{missedNote(sb2, borisMissed, sbBoris, sbContacts, sbBorisID)},
			},
		},
		{
			name: "only closed deals, own pipeline, stage, tags and name", o: borisAnswered,
			config: func(c *scenarios.Config) {
				k := &c.Incoming.Known
				k.PipelineID, k.StatusID, k.Tags, k.DealName = 77, 7702, []string{"repeat"}, "Repeat call {national}"
			},
			want: sandbox.Created{
				Leads: []sandbox.Lead{{ID: sb1, Name: "Repeat call 9162223344", PipelineID: 77, StatusID: 7702,
					ResponsibleUserID: int64(sbOtherOwner), ContactIDs: []int64{sbBorisID}, Tags: []string{"repeat"}}},
				Notes: []sandbox.Note{answeredNote(sb2, borisAnswered, sbBoris, sbLeads, sb1)},
			},
			borisLead: []int64{602, 603, sb1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newSandboxEnv(t, sbConfig(tt.config), fastRate)
			res := e.handle(t, tt.o)
			assert.True(t, res.Known)
			assert.Equal(t, sbWant(tt.want), e.created(t))
			assert.Equal(t, []int64{sbAnnaOpenDeal}, e.leadsOf(sbAnnaID), "Anna's deals")
			assert.Equal(t, orSeeded(tt.borisLead, []int64{602, 603}), e.leadsOf(sbBorisID), "Boris's deals")
		})
	}
}

// orSeeded is want, or the seeded deals when the row names none.
func orSeeded(want, seeded []int64) []int64 {
	if want != nil {
		return want
	}
	return seeded
}

// --- missed -----------------------------------------------------------------------------

// TestSandboxMissedTask: missed.create_task, deadline, task_text, responsible
// (first_operator / default_manager) and default_manager; a known client's task goes to
// the contact's responsible whatever the rule.
func TestSandboxMissedTask(t *testing.T) {
	t.Parallel()
	missed := sbIncoming("m1", sbNewDialled, false)
	callFromNew := "Call from " + string(sbNew)
	newCaller := func(resp crm.UserID, o routing.CallOutcome, text string, till time.Time) sandbox.Created {
		return sandbox.Created{
			Contacts: []sandbox.Contact{sbContact(sb1, string(sbNew), resp, sbNew, sb2)},
			Leads:    []sandbox.Lead{sbLead(sb2, callFromNew, resp, sb1)},
			Tasks:    []sandbox.Task{sbTask(sb3, text, resp, sbLeads, sb2, till, "m1")},
			Notes:    []sandbox.Note{missedNote(sb4, o, sbNew, sbLeads, sb2)},
		}
	}
	defaultManagerRule := func(c *scenarios.Config) {
		c.Missed.Responsible, c.Missed.DefaultManager = scenarios.ResponsibleDefaultManager, defaultManager
	}
	annaMissed, borisMissed := sbIncoming("m1", sbAnnaDialled, false), sbIncoming("m1", sbBorisDialled, false)
	longRing := missed
	longRing.RingDuration = 3 * time.Minute
	longRing = at(longRing, t0) // rang from 09:57 to 10:00
	tests := []struct {
		name   string
		config func(*scenarios.Config)
		o      routing.CallOutcome
		want   sandbox.Created
	}{
		{
			name: "new caller, first_operator: the first operator", o: missed,
			want: newCaller(firstOperator, missed, sbMissedText(sbNew, missed), t0.Add(time.Hour)),
		},
		{
			name: "new caller, first_operator but nobody rang: the default manager", o: noFirstOperator(missed),
			config: func(c *scenarios.Config) { c.Missed.DefaultManager = defaultManager },
			want: creditedTo(defaultManager,
				newCaller(defaultManager, noFirstOperator(missed), sbMissedText(sbNew, missed), t0.Add(time.Hour))),
		},
		{
			name: "new caller, default_manager: the default manager although an operator rang", o: missed, config: defaultManagerRule,
			want: newCaller(defaultManager, missed, sbMissedText(sbNew, missed), t0.Add(time.Hour)),
		},
		{
			name: "deadline 300s and own text: due 5 minutes after the call ended", o: missed,
			config: func(c *scenarios.Config) {
				c.Missed.Deadline, c.Missed.TaskText = 300*time.Second, "Call {national} back ({date} {time})"
			},
			want: newCaller(firstOperator, missed, "Call 9035550101 back (2026-03-02 09:59)", t0.Add(5*time.Minute)),
		},
		{
			name: "a long ring: the deadline counts from the end of the call", o: longRing,
			want: newCaller(firstOperator, longRing, "Call back +79035550101: missed call at 09:57", t0.Add(time.Hour)),
		},
		{
			name: "create_task off: contact, deal and note, no task", o: missed,
			config: func(c *scenarios.Config) { c.Missed.CreateTask = false },
			want: sandbox.Created{
				Contacts: []sandbox.Contact{sbContact(sb1, string(sbNew), firstOperator, sbNew, sb2)},
				Leads:    []sandbox.Lead{sbLead(sb2, callFromNew, firstOperator, sb1)},
				Notes:    []sandbox.Note{missedNote(sb3, missed, sbNew, sbLeads, sb2)},
			},
		},
		{
			name: "known client with an open deal, default_manager: the contact's responsible", o: annaMissed, config: defaultManagerRule,
			want: sandbox.Created{
				Tasks: []sandbox.Task{sbTask(sb1, sbMissedText(sbAnna, annaMissed), contactOwner, sbLeads, sbAnnaOpenDeal, t0.Add(time.Hour), "m1")},
				Notes: []sandbox.Note{missedNote(sb2, annaMissed, sbAnna, sbLeads, sbAnnaOpenDeal)},
			},
		},
		{
			name: "known client with closed deals, first_operator: the contact's responsible, on the new deal", o: borisMissed,
			want: sandbox.Created{
				Leads: []sandbox.Lead{sbLead(sb1, "Call from "+string(sbBoris), sbOtherOwner, sbBorisID)},
				Tasks: []sandbox.Task{sbTask(sb2, sbMissedText(sbBoris, borisMissed), sbOtherOwner, sbLeads, sb1, t0.Add(time.Hour), "m1")},
				Notes: []sandbox.Note{missedNote(sb3, borisMissed, sbBoris, sbLeads, sb1)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newSandboxEnv(t, sbConfig(tt.config), fastRate)
			e.handle(t, tt.o)
			assert.Equal(t, sbWant(tt.want), e.created(t))
		})
	}
}

// TestSandboxMissedTaskWindow: further missed calls within the task's deadline create no
// second task, whether the engine remembers its task (shared state) or only the CRM shows it
// (another instance whose state was lost); after the deadline a new one. It runs at the
// account's own 7 requests per second: the 17 requests must get no 429.
func TestSandboxMissedTaskWindow(t *testing.T) {
	t.Parallel()
	for _, lost := range []bool{false, true} {
		name := "engine state shared"
		if lost {
			name = "engine state lost: the CRM's open task holds back"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newSandboxEnv(t, scenarios.Defaults(), accountRate)
			steps := []struct {
				advance time.Duration
				id      string
				tasks   int
				reason  string
			}{
				{id: "w1", tasks: 1},
				{advance: 30 * time.Minute, id: "w2", tasks: 1,
					reason: "missed call: +79035550101 already has a call-back task until 2026-03-02T11:00:00Z"},
				{advance: 29*time.Minute + 59*time.Second, id: "w3", tasks: 1},
				{advance: 2 * time.Second, id: "w4", tasks: 2},
			}
			if lost {
				steps[1].reason = "missed call: task " + strconv.FormatInt(sb3, 10) + " on lead " +
					strconv.FormatInt(sb2, 10) + " is open until 2026-03-02T11:00:00Z"
			}
			var outcomes []routing.CallOutcome
			for _, s := range steps {
				e.clock.Advance(s.advance)
				if lost {
					e.eng = e.engine(t, scenarios.Defaults(), events.NewMemoryState())
				}
				o := at(sbIncoming(s.id, sbNewDialled, false), e.clock.Now())
				outcomes = append(outcomes, o)
				res := e.handle(t, o)
				require.Len(t, e.srv.Created().Tasks, s.tasks, "after %s", s.id)
				if s.reason != "" {
					assert.Contains(t, res.Reasons, s.reason)
				}
			}
			last := outcomes[3]
			assert.Equal(t, sbWant(sandbox.Created{
				Contacts: []sandbox.Contact{sbContact(sb1, string(sbNew), firstOperator, sbNew, sb2)},
				Leads:    []sandbox.Lead{sbLead(sb2, "Call from "+string(sbNew), firstOperator, sb1)},
				Tasks: []sandbox.Task{
					sbTask(sb3, sbMissedText(sbNew, outcomes[0]), firstOperator, sbLeads, sb2, t0.Add(time.Hour), "w1"),
					sbTask(sb7, sbMissedText(sbNew, last), firstOperator, sbLeads, sb2, e.clock.Now().Add(time.Hour), "w4"),
				},
				Notes: []sandbox.Note{
					missedNote(sb4, outcomes[0], sbNew, sbLeads, sb2),
					missedNote(sb5, outcomes[1], sbNew, sbLeads, sb2),
					missedNote(sb6, outcomes[2], sbNew, sbLeads, sb2),
					missedNote(sb8, last, sbNew, sbLeads, sb2),
				},
			}), e.created(t))
			assert.Greater(t, e.requests(), 7, "more requests than one second of the account's budget")
		})
	}
}

// --- outgoing ---------------------------------------------------------------------------

// TestSandboxOutgoing: outgoing.unknown, outgoing.known and outgoing.unanswered.
func TestSandboxOutgoing(t *testing.T) {
	t.Parallel()
	newAnswered, newUnanswered := sbOutgoing("o1", "+7 903 555 01 01", true), sbOutgoing("o1", "+7 903 555 01 01", false)
	annaAnswered, annaUnanswered := sbOutgoing("o1", sbAnnaDialled, true), sbOutgoing("o1", sbAnnaDialled, false)
	borisAnswered, borisUnanswered := sbOutgoing("o1", sbBorisDialled, true), sbOutgoing("o1", sbBorisDialled, false)
	coldCalling := func(c *scenarios.Config) {
		c.Outgoing.Unknown.CreateContact, c.Outgoing.Unknown.CreateDeal = true, true
		c.Outgoing.Known.CreateDealIfNoOpen = true
	}
	notReached := func(id int64, o routing.CallOutcome, phone crm.Phone, entity string, eid int64) sandbox.Note {
		return sbNote(id, o, phone, entity, eid, crm.CallStatusNotReached, scenarios.ResultNotReached)
	}
	tests := []struct {
		name   string
		config func(*scenarios.Config)
		o      routing.CallOutcome
		known  bool
		want   sandbox.Created
	}{
		{
			name: "unknown, answered, create_contact and create_deal on: contact and deal for the caller", config: coldCalling, o: newAnswered,
			want: sandbox.Created{
				Contacts: []sandbox.Contact{sbContact(sb1, string(sbNew), caller, sbNew, sb2)},
				Leads:    []sandbox.Lead{sbLead(sb2, "Call to "+string(sbNew), caller, sb1)},
				Notes:    []sandbox.Note{answeredNote(sb3, newAnswered, sbNew, sbLeads, sb2)},
			},
		},
		{
			name: "unknown, answered, contact only", o: newAnswered,
			config: func(c *scenarios.Config) { c.Outgoing.Unknown.CreateContact = true },
			want: sandbox.Created{
				Contacts: []sandbox.Contact{sbContact(sb1, string(sbNew), caller, sbNew)},
				Notes:    []sandbox.Note{answeredNote(sb2, newAnswered, sbNew, sbContacts, sb1)},
			},
		},
		{name: "unknown, answered, defaults: nothing", o: newAnswered},
		{name: "unknown, unanswered, switched on: nothing for a number that never answered", config: coldCalling, o: newUnanswered},
		{
			name: "known with open deal, answered, switched on: only the note on the open deal", config: coldCalling, o: annaAnswered, known: true,
			want: sandbox.Created{Notes: []sandbox.Note{answeredNote(sb1, annaAnswered, sbAnna, sbLeads, sbAnnaOpenDeal)}},
		},
		{
			name: "known with closed deals, answered, switched on: a deal for the contact's responsible", config: coldCalling, o: borisAnswered, known: true,
			want: sandbox.Created{
				Leads: []sandbox.Lead{sbLead(sb1, "Call to "+string(sbBoris), sbOtherOwner, sbBorisID)},
				Notes: []sandbox.Note{answeredNote(sb2, borisAnswered, sbBoris, sbLeads, sb1)},
			},
		},
		{
			name: "known with closed deals, answered, defaults: the note on the contact", o: borisAnswered, known: true,
			want: sandbox.Created{Notes: []sandbox.Note{answeredNote(sb1, borisAnswered, sbBoris, sbContacts, sbBorisID)}},
		},
		{
			name: "known with open deal, unanswered: a call_out note with call_status 6, no task", o: annaUnanswered, known: true,
			want: sandbox.Created{Notes: []sandbox.Note{notReached(sb1, annaUnanswered, sbAnna, sbLeads, sbAnnaOpenDeal)}},
		},
		{
			name: "known with closed deals, unanswered, switched on: the not-reached note on the contact, no deal", config: coldCalling, o: borisUnanswered, known: true,
			want: sandbox.Created{Notes: []sandbox.Note{notReached(sb1, borisUnanswered, sbBoris, sbContacts, sbBorisID)}},
		},
		{
			name: "known, unanswered, not_reached_note off: nothing", o: annaUnanswered, known: true,
			config: func(c *scenarios.Config) { c.Outgoing.Unanswered.NotReachedNote = false },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newSandboxEnv(t, sbConfig(tt.config), fastRate)
			res := e.handle(t, tt.o)
			assert.Equal(t, tt.known, res.Known)
			got := e.created(t)
			assert.Equal(t, sbWant(tt.want), got)
			for _, n := range got.Notes {
				assert.Equal(t, "call_out", n.NoteType)
				if !tt.o.Answered {
					assert.Equal(t, 6, n.Params.CallStatus, "not reached")
				}
			}
		})
	}
}

// --- notes ------------------------------------------------------------------------------

// TestSandboxCallNotes: notes.call_notes and notes.source.
func TestSandboxCallNotes(t *testing.T) {
	t.Parallel()
	notesOff := func(c *scenarios.Config) { c.Notes.CallNotes = false }
	newAnswered, annaMissed := sbIncoming("n1", sbNewDialled, true), sbIncoming("n1", sbAnnaDialled, false)
	annaOut, annaNotReached := sbOutgoing("n1", sbAnnaDialled, true), sbOutgoing("n1", sbAnnaDialled, false)
	tests := []struct {
		name   string
		config func(*scenarios.Config)
		o      routing.CallOutcome
		want   sandbox.Created
	}{
		{
			name: "off, incoming answered from a new number: contact and deal, no note", config: notesOff, o: newAnswered,
			want: sandbox.Created{
				Contacts: []sandbox.Contact{sbContact(sb1, string(sbNew), answeredBy, sbNew, sb2)},
				Leads:    []sandbox.Lead{sbLead(sb2, "Call from "+string(sbNew), answeredBy, sb1)},
			},
		},
		{
			name: "off, incoming missed from a known client: the task, no note", config: notesOff, o: annaMissed,
			want: sandbox.Created{Tasks: []sandbox.Task{
				sbTask(sb1, sbMissedText(sbAnna, annaMissed), contactOwner, sbLeads, sbAnnaOpenDeal, t0.Add(time.Hour), "n1"),
			}},
		},
		{name: "off, outgoing answered to a known client: nothing", config: notesOff, o: annaOut},
		{
			name: "off, outgoing unanswered: not_reached_note still adds its note", config: notesOff, o: annaNotReached,
			want: sandbox.Created{Notes: []sandbox.Note{
				sbNote(sb1, annaNotReached, sbAnna, sbLeads, sbAnnaOpenDeal, crm.CallStatusNotReached, scenarios.ResultNotReached),
			}},
		},
		{
			name: "own source on the note", o: annaOut,
			config: func(c *scenarios.Config) { c.Notes.Source = "Office PBX" },
			want: sandbox.Created{Notes: []sandbox.Note{func() sandbox.Note {
				n := answeredNote(sb1, annaOut, sbAnna, sbLeads, sbAnnaOpenDeal)
				n.Params.Source = "Office PBX"
				return n
			}()}},
		},
		{
			name: "own source on the Unsorted entry", o: newAnswered,
			config: func(c *scenarios.Config) {
				c.Notes.Source, c.Incoming.Unknown.Mode = "Office PBX", scenarios.ModeUnsorted
			},
			want: sandbox.Created{Unsorted: []sandbox.Unsorted{func() sandbox.Unsorted {
				u := sbUnsorted(newAnswered, answeredBy, sb1, sb2)
				u.SourceName = "Office PBX"
				return u
			}()}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newSandboxEnv(t, sbConfig(tt.config), fastRate)
			e.handle(t, tt.o)
			assert.Equal(t, sbWant(tt.want), e.created(t))
		})
	}
}

// --- idempotency ------------------------------------------------------------------------

// TestSandboxDuplicateDelivery: the queue delivering an outcome twice makes no request the
// second time, not even past the task deadline (where a fresh plan would add a task), and
// the sandbox holds exactly what the first delivery created. At the account's 7 per second.
func TestSandboxDuplicateDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config func(*scenarios.Config)
		o      routing.CallOutcome
		counts [5]int // contacts, leads, unsorted, tasks, notes after the first delivery
	}{
		{name: "new caller, direct, missed", o: sbIncoming("d1", sbNewDialled, false), counts: [5]int{1, 1, 0, 1, 1}},
		{name: "new caller, direct, answered", o: sbIncoming("d1", sbNewDialled, true), counts: [5]int{1, 1, 0, 0, 1}},
		{
			name: "new caller, unsorted, missed", o: sbIncoming("d1", sbNewDialled, false), counts: [5]int{0, 0, 1, 0, 0},
			config: func(c *scenarios.Config) { c.Incoming.Unknown.Mode = scenarios.ModeUnsorted },
		},
		{name: "known client with closed deals, missed", o: sbIncoming("d1", sbBorisDialled, false), counts: [5]int{0, 1, 0, 1, 1}},
		{name: "known client with an open deal, answered", o: sbIncoming("d1", sbAnnaDialled, true), counts: [5]int{0, 0, 0, 0, 1}},
		{
			name: "outgoing cold call, answered", o: sbOutgoing("d1", sbNewDialled, true), counts: [5]int{1, 1, 0, 0, 1},
			config: func(c *scenarios.Config) {
				c.Outgoing.Unknown.CreateContact, c.Outgoing.Unknown.CreateDeal = true, true
			},
		},
		{name: "outgoing, unanswered", o: sbOutgoing("d1", sbAnnaDialled, false), counts: [5]int{0, 0, 0, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newSandboxEnv(t, sbConfig(tt.config), accountRate)
			first := e.handle(t, tt.o)
			before := e.created(t)
			assert.Equal(t, tt.counts, [5]int{len(before.Contacts), len(before.Leads), len(before.Unsorted), len(before.Tasks), len(before.Notes)})
			requests := e.requests()

			e.clock.Advance(2 * time.Hour)
			second := e.handle(t, tt.o)
			assert.Equal(t, before, e.created(t), "nothing created twice")
			assert.Equal(t, requests, e.requests(), "no request at all the second time")
			assert.True(t, second.Resumed)
			require.Len(t, second.Steps, len(first.Steps))
			for i, s := range second.Steps {
				assert.Equal(t, scenarios.StepEarlier, s.Status, s.Kind)
				assert.Equal(t, first.Steps[i].ID, s.ID, s.Kind)
			}

			// A third delivery to a fresh engine sharing the state (another instance) is the
			// same: the State, not the engine, remembers.
			e.eng = e.engine(t, sbConfig(tt.config), e.state)
			e.handle(t, tt.o)
			assert.Equal(t, before, e.created(t))
			assert.Zero(t, e.writes()-writesOf(before), "no write beyond the first delivery's")
		})
	}
}

// writesOf is how many write requests creating c took: one per entity (the engine writes
// one at a time), Unsorted entries included.
func writesOf(c sandbox.Created) int {
	return len(c.Contacts) + len(c.Leads) + len(c.Unsorted) + len(c.Tasks) + len(c.Notes)
}

// sbFaultyWriter is the real client with one write failing: before it reaches amoCRM (the
// CRM refused it) or after (the CRM wrote it, the answer was lost).
type sbFaultyWriter struct {
	crm.Writer
	n    int  // the write that fails, from 1
	lose bool // the write happens, its answer is lost

	mu     sync.Mutex
	writes int
}

var errSBInjected = fmt.Errorf("%w: injected by the test", crm.ErrUnavailable)

func (w *sbFaultyWriter) write(do func() error) error {
	w.mu.Lock()
	w.writes++
	fail := w.writes == w.n
	w.mu.Unlock()
	if fail && !w.lose {
		return errSBInjected
	}
	if err := do(); err != nil || !fail {
		return err
	}
	return errSBInjected
}

func (w *sbFaultyWriter) CreateContacts(ctx context.Context, cs []crm.NewContact) (ids []int64, err error) {
	err = w.write(func() error { ids, err = w.Writer.CreateContacts(ctx, cs); return err })
	return ids, err
}

func (w *sbFaultyWriter) CreateLeads(ctx context.Context, ls []crm.NewLead) (ids []int64, err error) {
	err = w.write(func() error { ids, err = w.Writer.CreateLeads(ctx, ls); return err })
	return ids, err
}

func (w *sbFaultyWriter) CreateTasks(ctx context.Context, ts []crm.NewTask) (ids []int64, err error) {
	err = w.write(func() error { ids, err = w.Writer.CreateTasks(ctx, ts); return err })
	return ids, err
}

func (w *sbFaultyWriter) AddUnsortedCalls(ctx context.Context, us []crm.UnsortedCall) error {
	return w.write(func() error { return w.Writer.AddUnsortedCalls(ctx, us) })
}

func (w *sbFaultyWriter) AddCallNotes(ctx context.Context, ns []crm.CallNote) error {
	return w.write(func() error { return w.Writer.AddCallNotes(ctx, ns) })
}

// TestSandboxRetryAfterFailure: whichever write of an outcome fails, and however (amoCRM
// refused it; amoCRM wrote it but the answer was lost; the engine could not record it), the
// queue's retry of the same outcome leaves the sandbox holding exactly what a run without
// failure creates, and a third delivery writes nothing. The engine runs on the real time
// here, so that recognising a lead an interrupted attempt wrote compares the sandbox's
// created_at with a plan time on the same clock.
func TestSandboxRetryAfterFailure(t *testing.T) {
	t.Parallel()
	start := time.Now().UTC().Truncate(time.Second)
	cases := []struct {
		name   string
		config func(*scenarios.Config)
		o      routing.CallOutcome
		writes int
		// noteLast: the last write is the call note.
		noteLast bool
	}{
		{name: "new caller missed", o: sbIncoming("r1", sbNewDialled, false), writes: 4, noteLast: true},
		{name: "new caller answered", o: sbIncoming("r1", sbNewDialled, true), writes: 3, noteLast: true},
		{name: "known client with closed deals missed", o: sbIncoming("r1", sbBorisDialled, false), writes: 3, noteLast: true},
		{name: "known client with an open deal answered", o: sbIncoming("r1", sbAnnaDialled, true), writes: 1, noteLast: true},
		{
			name: "outgoing cold call", o: sbOutgoing("r1", sbNewDialled, true), writes: 3, noteLast: true,
			config: func(c *scenarios.Config) {
				c.Outgoing.Unknown.CreateContact, c.Outgoing.Unknown.CreateDeal = true, true
			},
		},
		{
			name: "unsorted", o: sbIncoming("r1", sbNewDialled, false), writes: 1,
			config: func(c *scenarios.Config) { c.Incoming.Unknown.Mode = scenarios.ModeUnsorted },
		},
	}
	faults := []string{"CRM refuses", "CRM writes, answer lost", "state down after the write"}
	for _, sc := range cases {
		o := at(sc.o, start)
		retryEnv := func(t *testing.T, w func(crm.Writer) crm.Writer, state events.State) *sbEnv {
			e := newSandboxEnv(t, sbConfig(sc.config), fastRate)
			e.clock.now = start
			e.state = state
			eng, err := scenarios.New(sbConfig(sc.config), e.client, w(e.client), state,
				scenarios.WithRegion("RU"), scenarios.WithLocation(time.UTC), scenarios.WithClock(e.clock.Now))
			require.NoError(t, err)
			e.eng = eng
			return e
		}
		for _, f := range faults {
			for n := 1; n <= sc.writes; n++ {
				t.Run(fmt.Sprintf("%s/%s/write %d of %d", sc.name, f, n, sc.writes), func(t *testing.T) {
					t.Parallel()
					same := func(w crm.Writer) crm.Writer { return w }
					base := retryEnv(t, same, events.NewMemoryState())
					base.handle(t, o)
					want := base.created(t)
					require.Equal(t, sc.writes, base.writes(), "writes of a run without failure")

					var state events.State = events.NewMemoryState()
					wrap := same
					switch f {
					case "state down after the write":
						state = &eventstest.KilledAfter{State: state, Record: n + 1} // save 1 stores the plan
					default:
						wrap = func(w crm.Writer) crm.Writer { return &sbFaultyWriter{Writer: w, n: n, lose: f != "CRM refuses"} }
					}
					e := retryEnv(t, wrap, state)
					_, err := e.eng.HandleCall(t.Context(), o)
					require.Error(t, err)
					assert.NotErrorIs(t, err, scenarios.ErrPermanent, "worth a retry")

					e.clock.Advance(time.Minute)
					res := e.handle(t, o)
					assert.True(t, res.Resumed)
					assert.Equal(t, want, e.created(t), "the retry: every entity exactly once")

					w := e.writes()
					e.handle(t, o)
					assert.Equal(t, w, e.writes(), "a third delivery writes nothing")
					assert.Equal(t, want, e.created(t))
				})
			}
		}
	}
}
