package scenarios_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/scenarios"
	"github.com/crmlink/crmlink/scenarios/scenariotest"
)

// TestIncomingUnknown: incoming.unknown.mode × answered/missed, with the switches around it.
func TestIncomingUnknown(t *testing.T) {
	answered, missed := incoming("c1", true), incoming("c1", false)
	unsortedEntry := func(resp crm.UserID, o bool) scenariotest.Unsorted {
		call := missed
		if o {
			call = answered
		}
		return scenariotest.Unsorted{Status: scenariotest.UnsortedPending, UnsortedCall: crm.UnsortedCall{
			UID: "c1", SourceName: "crmlink", Phone: client, CalledAt: call.Start,
			Duration: call.TalkDuration, Link: call.RecordingURL, Responsible: resp,
			ContactName: string(client), LeadName: callFrom,
		}}
	}
	withMode := func(m scenarios.Mode) func(*scenarios.Config) {
		return func(c *scenarios.Config) { c.Incoming.Unknown.Mode = m }
	}
	tests := []struct {
		name     string
		config   func(*scenarios.Config)
		answered bool
		want     scenariotest.Snapshot
		reasons  []string
	}{
		{
			name: "direct answered: contact and deal on who answered, note on the deal", config: withMode(scenarios.ModeDirect), answered: true,
			want: scenariotest.Snapshot{
				Contacts: []scenariotest.Contact{newContact(1001, string(client), answeredBy, "c1", 2001)},
				Leads:    []scenariotest.Lead{newLead(2001, callFrom, answeredBy, 1001, "c1")},
				Notes:    []crm.CallNote{note(answered, crm.EntityLead, 2001, crm.CallStatusAnswered, "")},
			},
		},
		{
			name: "direct missed: contact, deal and task on the first operator", config: withMode(scenarios.ModeDirect),
			want: scenariotest.Snapshot{
				Contacts: []scenariotest.Contact{newContact(1001, string(client), firstOperator, "c1", 2001)},
				Leads:    []scenariotest.Lead{newLead(2001, callFrom, firstOperator, 1001, "c1")},
				Tasks:    []scenariotest.Task{newTask(3001, missedText(missed), firstOperator, crm.EntityLead, 2001, t0.Add(time.Hour), "c1")},
				Notes:    []crm.CallNote{note(missed, crm.EntityLead, 2001, crm.CallStatusNotReached, scenarios.ResultMissed)},
			},
		},
		{
			name: "unsorted answered: an Unsorted entry only", config: withMode(scenarios.ModeUnsorted), answered: true,
			want:    scenariotest.Snapshot{Unsorted: []scenariotest.Unsorted{unsortedEntry(answeredBy, true)}},
			reasons: []string{"call note: no contact or deal to put it on"},
		},
		{
			name: "unsorted missed: an Unsorted entry, no task without a card", config: withMode(scenarios.ModeUnsorted),
			want: scenariotest.Snapshot{Unsorted: []scenariotest.Unsorted{unsortedEntry(firstOperator, false)}},
			reasons: []string{
				"missed call: no contact or deal to put the call-back task on",
				"call note: no contact or deal to put it on",
			},
		},
		{
			name: "unsorted_until_answered answered: contact and deal at once", config: withMode(scenarios.ModeUnsortedUntilAnswered), answered: true,
			want: scenariotest.Snapshot{
				Contacts: []scenariotest.Contact{newContact(1001, string(client), answeredBy, "c1", 2001)},
				Leads:    []scenariotest.Lead{newLead(2001, callFrom, answeredBy, 1001, "c1")},
				Notes:    []crm.CallNote{note(answered, crm.EntityLead, 2001, crm.CallStatusAnswered, "")},
			},
		},
		{
			name: "unsorted_until_answered missed: Unsorted", config: withMode(scenarios.ModeUnsortedUntilAnswered),
			want: scenariotest.Snapshot{Unsorted: []scenariotest.Unsorted{unsortedEntry(firstOperator, false)}},
			reasons: []string{
				"missed call: no contact or deal to put the call-back task on",
				"call note: no contact or deal to put it on",
			},
		},
		{
			name:     "direct without deal: contact only, note on the contact",
			config:   func(c *scenarios.Config) { c.Incoming.Unknown.CreateDeal = false },
			answered: true,
			want: scenariotest.Snapshot{
				Contacts: []scenariotest.Contact{newContact(1001, string(client), answeredBy, "c1")},
				Notes:    []crm.CallNote{note(answered, crm.EntityContact, 1001, crm.CallStatusAnswered, "")},
			},
		},
		{
			name:   "direct missed without deal: task on the contact",
			config: func(c *scenarios.Config) { c.Incoming.Unknown.CreateDeal = false },
			want: scenariotest.Snapshot{
				Contacts: []scenariotest.Contact{newContact(1001, string(client), firstOperator, "c1")},
				Tasks:    []scenariotest.Task{newTask(3001, missedText(missed), firstOperator, crm.EntityContact, 1001, t0.Add(time.Hour), "c1")},
				Notes:    []crm.CallNote{note(missed, crm.EntityContact, 1001, crm.CallStatusNotReached, scenarios.ResultMissed)},
			},
		},
		{
			name: "direct with nothing switched on: nothing",
			config: func(c *scenarios.Config) {
				c.Incoming.Unknown.CreateContact, c.Incoming.Unknown.CreateDeal = false, false
			},
			answered: true,
			reasons: []string{
				"incoming.unknown.create_contact is off: nothing is created for a new caller",
				"call note: no contact or deal to put it on",
			},
		},
		{
			name: "direct into a chosen pipeline and stage with tags and own names",
			config: func(c *scenarios.Config) {
				u := &c.Incoming.Unknown
				u.PipelineID, u.StatusID, u.Tags = 77, 7701, []string{"call", "new"}
				u.DealName, u.ContactName = "Inbound {national} on {date}", "Caller {phone} to {called}"
			},
			answered: true,
			want: scenariotest.Snapshot{
				Contacts: []scenariotest.Contact{newContact(1001, "Caller +79161234567 to 74951112233", answeredBy, "c1", 2001)},
				Leads: []scenariotest.Lead{func() scenariotest.Lead {
					l := newLead(2001, "Inbound 9161234567 on 2026-03-02", answeredBy, 1001, "c1")
					l.PipelineID, l.StatusID, l.Tags = 77, 7701, []string{"call", "new"}
					return l
				}()},
				Notes: []crm.CallNote{note(answered, crm.EntityLead, 2001, crm.CallStatusAnswered, "")},
			},
		},
		{
			// (create_deal off is a configuration error with Unsorted: TestConfigValidate.)
			name: "unsorted into a pipeline",
			config: func(c *scenarios.Config) {
				c.Incoming.Unknown.Mode, c.Incoming.Unknown.PipelineID = scenarios.ModeUnsorted, 77
			},
			answered: true,
			want: scenariotest.Snapshot{Unsorted: []scenariotest.Unsorted{func() scenariotest.Unsorted {
				u := unsortedEntry(answeredBy, true)
				u.PipelineID = 77
				return u
			}()}},
			reasons: []string{"call note: no contact or deal to put it on"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := scenarios.Defaults()
			tt.config(&cfg)
			e := newEnv(t, cfg)
			o := missed
			if tt.answered {
				o = answered
			}
			res := e.handle(t, o)
			assert.Equal(t, tt.want, e.crm.Created())
			assert.Equal(t, tt.reasons, res.Reasons)
			assert.False(t, res.Known)
			assert.Equal(t, client, res.Phone)
		})
	}
}

// TestUnsortedNotRepeatedWhilePending: while a number's Unsorted entry waits for a manager,
// further calls add none; once it is decided, the next call adds one again.
func TestUnsortedNotRepeatedWhilePending(t *testing.T) {
	for _, mode := range []scenarios.Mode{scenarios.ModeUnsorted, scenarios.ModeUnsortedUntilAnswered} {
		t.Run(string(mode), func(t *testing.T) {
			cfg := scenarios.Defaults()
			cfg.Incoming.Unknown.Mode = mode
			e := newEnv(t, cfg)

			e.handle(t, incoming("c1", false))
			e.clock.Advance(10 * time.Minute)
			res := e.handle(t, at(incoming("c2", false), e.clock.Now()))
			assert.Contains(t, res.Reasons, "an Unsorted entry for +79161234567 still waits for a manager: no second one")
			created := e.crm.Created()
			require.Len(t, created.Unsorted, 1)
			assert.Equal(t, "c1", created.Unsorted[0].UID)

			e.crm.DecideUnsorted("c1", scenariotest.UnsortedDeclined)
			e.clock.Advance(10 * time.Minute)
			e.handle(t, at(incoming("c3", false), e.clock.Now()))
			created = e.crm.Created()
			require.Len(t, created.Unsorted, 2)
			assert.Equal(t, "c3", created.Unsorted[1].UID)
			assert.Equal(t, scenariotest.UnsortedPending, created.Unsorted[1].Status)
			assert.Empty(t, created.Contacts)
		})
	}
}

// TestAnsweredCallAcceptsTheWaitingUnsortedEntry: under unsorted_until_answered a new
// caller's missed call waits in Unsorted; their next call, answered, accepts that entry
// rather than creating a second contact beside it, also when a manager decided on the
// entry first or an attempt stopped halfway.
func TestAnsweredCallAcceptsTheWaitingUnsortedEntry(t *testing.T) {
	const otherManager crm.UserID = 77
	// meanwhile runs once, just before crmlink's accept reaches the CRM (do may write
	// itself: the flag is set first).
	meanwhile := func(e *env, do func()) {
		var mu sync.Mutex
		done := false
		e.crm.FailWrite = func(op scenariotest.Op) error {
			mu.Lock()
			first := op.Method == "AcceptUnsorted" && !done
			done = done || first
			mu.Unlock()
			if first {
				do()
			}
			return nil
		}
	}
	tests := []struct {
		name       string
		setup      func(e *env)
		retry      bool // the first attempt fails after the accept
		contactBy  crm.UserID
		status     scenariotest.UnsortedStatus
		nothing    bool // nothing to note the call on
		stepStatus scenarios.StepStatus
	}{
		{name: "accepted as the manager who answered", contactBy: answeredBy,
			status: scenariotest.UnsortedAccepted, stepStatus: scenarios.StepDone},
		{name: "the note fails once: the retry notes on the accepted deal", retry: true,
			setup:     func(e *env) { e.crm.FailWrite = scenariotest.FailOnce(3, scenariotest.ErrInjected) },
			contactBy: answeredBy, status: scenariotest.UnsortedAccepted, stepStatus: scenarios.StepEarlier},
		{name: "a manager accepted it first: the note goes on their deal",
			setup: func(e *env) {
				meanwhile(e, func() {
					_, _, err := e.crm.AcceptUnsorted(context.Background(), "c1", otherManager, 0)
					require.NoError(t, err)
				})
			},
			contactBy: otherManager, status: scenariotest.UnsortedAccepted, stepStatus: scenarios.StepAdopted},
		{name: "a manager declined it first: nothing is created",
			setup:  func(e *env) { meanwhile(e, func() { e.crm.DecideUnsorted("c1", scenariotest.UnsortedDeclined) }) },
			status: scenariotest.UnsortedDeclined, nothing: true, stepStatus: scenarios.StepSkipped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := scenarios.Defaults()
			cfg.Incoming.Unknown.Mode = scenarios.ModeUnsortedUntilAnswered
			e := newEnv(t, cfg)
			e.handle(t, incoming("c1", false))
			require.Len(t, e.crm.Created().Unsorted, 1)
			if tc.setup != nil {
				tc.setup(e)
			}
			e.clock.Advance(10 * time.Minute)
			answered := at(incoming("c2", true), e.clock.Now())
			if tc.retry {
				_, err := e.eng.HandleCall(context.Background(), answered)
				require.Error(t, err, "the first attempt stops at the note")
			}
			res := e.handle(t, answered)

			created := e.crm.Created()
			require.Len(t, created.Unsorted, 1, "no second entry")
			assert.Equal(t, tc.status, created.Unsorted[0].Status)
			require.NotEmpty(t, res.Steps)
			assert.Equal(t, scenarios.KindAccept, res.Steps[0].Kind)
			assert.Equal(t, tc.stepStatus, res.Steps[0].Status, "%s", res)
			if tc.nothing {
				assert.Empty(t, created.Contacts)
				assert.Empty(t, created.Leads)
				assert.Empty(t, created.Notes, "%s", res)
				return
			}
			require.Len(t, created.Contacts, 1, "one contact for the number: %s", res)
			require.Len(t, created.Leads, 1)
			assert.Equal(t, tc.contactBy, created.Contacts[0].Responsible)
			assert.Equal(t, tc.contactBy, created.Leads[0].Responsible)
			require.Len(t, created.Notes, 1, "the answered call noted once")
			assert.Equal(t, crm.EntityLead, created.Notes[0].Entity)
			assert.Equal(t, created.Leads[0].ID, created.Notes[0].EntityID)
		})
	}
}

// TestIncomingKnown: a caller whose number is on a contact, with and without an open deal.
func TestIncomingKnown(t *testing.T) {
	answered, missed := incoming("c1", true), incoming("c1", false)
	tests := []struct {
		name     string
		noOpen   bool // create_deal_if_no_open off
		leads    func(e *env, contact int64)
		answered bool
		want     scenariotest.Snapshot
		reasons  []string
	}{
		{
			name:  "open deal, answered: only the note, on the open deal",
			leads: func(e *env, c int64) { e.openLead(c) }, answered: true,
			want: scenariotest.Snapshot{Notes: []crm.CallNote{note(answered, crm.EntityLead, 601, crm.CallStatusAnswered, "")}},
		},
		{
			name:  "open deal, missed: task on the open deal for the contact's responsible",
			leads: func(e *env, c int64) { e.openLead(c) },
			want: scenariotest.Snapshot{
				Tasks: []scenariotest.Task{newTask(3001, missedText(missed), contactOwner, crm.EntityLead, 601, t0.Add(time.Hour), "c1")},
				Notes: []crm.CallNote{note(missed, crm.EntityLead, 601, crm.CallStatusNotReached, scenarios.ResultMissed)},
			},
		},
		{
			name: "no deal, answered: a deal for the contact's responsible", answered: true,
			want: scenariotest.Snapshot{
				Leads: []scenariotest.Lead{newLead(2001, callFrom, contactOwner, 501, "c1")},
				Notes: []crm.CallNote{note(answered, crm.EntityLead, 2001, crm.CallStatusAnswered, "")},
			},
		},
		{
			name: "only closed deals, answered: a new deal",
			leads: func(e *env, c int64) {
				e.crm.AddLead(crm.Lead{ID: 602, Name: "Won", StatusID: crm.StatusWon}, c)
				e.crm.AddLead(crm.Lead{ID: 603, Name: "Lost", StatusID: crm.StatusLost}, c)
			},
			answered: true,
			want: scenariotest.Snapshot{
				Leads: []scenariotest.Lead{newLead(2001, callFrom, contactOwner, 501, "c1")},
				Notes: []crm.CallNote{note(answered, crm.EntityLead, 2001, crm.CallStatusAnswered, "")},
			},
		},
		{
			name: "no deal, missed: deal and task on the new deal, both the contact's responsible",
			want: scenariotest.Snapshot{
				Leads: []scenariotest.Lead{newLead(2001, callFrom, contactOwner, 501, "c1")},
				Tasks: []scenariotest.Task{newTask(3001, missedText(missed), contactOwner, crm.EntityLead, 2001, t0.Add(time.Hour), "c1")},
				Notes: []crm.CallNote{note(missed, crm.EntityLead, 2001, crm.CallStatusNotReached, scenarios.ResultMissed)},
			},
		},
		{
			name: "no deal, switch off, answered: the note on the contact", noOpen: true, answered: true,
			want:    scenariotest.Snapshot{Notes: []crm.CallNote{note(answered, crm.EntityContact, 501, crm.CallStatusAnswered, "")}},
			reasons: []string{"the client has no open deal and create_deal_if_no_open is off"},
		},
		{
			name: "no deal, switch off, missed: task on the contact", noOpen: true,
			want: scenariotest.Snapshot{
				Tasks: []scenariotest.Task{newTask(3001, missedText(missed), contactOwner, crm.EntityContact, 501, t0.Add(time.Hour), "c1")},
				Notes: []crm.CallNote{note(missed, crm.EntityContact, 501, crm.CallStatusNotReached, scenarios.ResultMissed)},
			},
			reasons: []string{"the client has no open deal and create_deal_if_no_open is off"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := scenarios.Defaults()
			cfg.Incoming.Known.CreateDealIfNoOpen = !tt.noOpen
			e := newEnv(t, cfg)
			c := e.knownClient()
			if tt.leads != nil {
				tt.leads(e, c)
			}
			o := missed
			if tt.answered {
				o = answered
			}
			res := e.handle(t, o)
			assert.Equal(t, tt.want, e.crm.Created())
			assert.Equal(t, tt.reasons, res.Reasons)
			assert.True(t, res.Known)
		})
	}
}

// TestKnownClientChoice: among contacts sharing the number, the one with an open deal wins,
// and of its open deals the most recently updated; a contact whose card does not actually
// hold the number (free-text search noise) is ignored.
func TestKnownClientChoice(t *testing.T) {
	e := newEnv(t, scenarios.Defaults())
	newer := e.crm.AddContact(crm.Contact{ID: 510, Name: "Newer, no deal", Responsible: 21,
		Phones: []string{"89161234567"}, UpdatedAt: t0.Add(-time.Minute)})
	older := e.crm.AddContact(crm.Contact{ID: 511, Name: "Older, open deals", Responsible: 22,
		Phones: []string{"+79161234567"}, UpdatedAt: t0.Add(-time.Hour)})
	e.crm.AddLead(crm.Lead{ID: 701, StatusID: 100, UpdatedAt: t0.Add(-3 * time.Hour)}, older)
	e.crm.AddLead(crm.Lead{ID: 702, StatusID: 100, UpdatedAt: t0.Add(-2 * time.Hour)}, older)
	e.crm.AddLead(crm.Lead{ID: 703, StatusID: crm.StatusWon, UpdatedAt: t0}, older)
	_ = newer

	o := incoming("c1", false)
	e.handle(t, o)
	assert.Equal(t, scenariotest.Snapshot{
		Tasks: []scenariotest.Task{newTask(3001, missedText(o), 22, crm.EntityLead, 702, t0.Add(time.Hour), "c1")},
		Notes: []crm.CallNote{note(o, crm.EntityLead, 702, crm.CallStatusNotReached, scenarios.ResultMissed)},
	}, e.crm.Created())
	assert.Equal(t, 1, e.crm.Calls("Leads"), "the candidates' deals are read in one request")
}

func TestPlanWritesNothing(t *testing.T) {
	e := newEnv(t, scenarios.Defaults())
	acts, err := e.eng.Plan(context.Background(), incoming("c1", false))
	require.NoError(t, err)
	require.Len(t, acts, 4)
	_, writes := e.crm.Requests()
	assert.Zero(t, writes)
	assert.True(t, e.crm.All().Empty())
}

// A known client whose contact has no responsible of its own (routing found the owner on
// the company): the new deal goes to the manager who answered, and a missed call's deal
// and task to the first manager whose phone rang. On a routed call both are the owner
// routing rang, so the client stays with the manager who owns them; the company's
// responsible is not read again for the deal.
func TestIncomingKnownWithoutContactResponsible(t *testing.T) {
	for _, answered := range []bool{true, false} {
		o := incoming("c1", answered)
		want := firstOperator
		if answered {
			want = answeredBy
		}
		e := newEnv(t, scenarios.Defaults())
		e.crm.AddContact(crm.Contact{ID: 501, Name: "Anna Petrova", Phones: []string{"+7 (916) 123-45-67"}, UpdatedAt: t0.Add(-24 * time.Hour)})
		e.handle(t, o)
		created := e.crm.Created()
		require.Len(t, created.Leads, 1)
		assert.Equal(t, want, created.Leads[0].Responsible, "answered %v", answered)
		if !answered {
			require.Len(t, created.Tasks, 1)
			assert.Equal(t, firstOperator, created.Tasks[0].Responsible)
		}
	}
}
