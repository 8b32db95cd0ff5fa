package scenarios_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/eventstest"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/scenarios"
	"github.com/crmlink/crmlink/scenarios/scenariotest"
)

// TestRetryAfterFailure: whichever write of an outcome fails, and however (the CRM refused
// it; the CRM did it but the answer was lost; the engine could not remember it), the queue's
// retry of the same outcome ends with every entity in the CRM exactly once, as if nothing
// had failed.
func TestRetryAfterFailure(t *testing.T) {
	cases := []struct {
		name   string
		config func(*scenarios.Config)
		setup  func(e *env)
		o      routing.CallOutcome
	}{
		{name: "new caller missed", o: incoming("r1", false)},
		{name: "new caller answered", o: incoming("r1", true)},
		{name: "known client without deal missed", setup: func(e *env) { e.knownClient() }, o: incoming("r1", false)},
		{
			name: "outgoing cold call",
			config: func(c *scenarios.Config) {
				c.Outgoing.Unknown.CreateContact, c.Outgoing.Unknown.CreateDeal = true, true
			},
			o: outgoing("r1", true),
		},
		{name: "unsorted", config: func(c *scenarios.Config) { c.Incoming.Unknown.Mode = scenarios.ModeUnsorted }, o: incoming("r1", false)},
	}
	states := []struct {
		name string
		new  func(t *testing.T) events.State
	}{
		{"memory", func(*testing.T) events.State { return events.NewMemoryState() }},
		{"redis", func(t *testing.T) events.State { return events.NewRedisState(testrig.Redis(t), "") }},
	}
	type fault struct {
		name   string
		inject func(e *env, n int) // fail the n-th write
		cause  error
	}
	faults := []fault{
		{"CRM refuses", func(e *env, n int) { e.crm.FailWrite = scenariotest.FailOnce(n, scenariotest.ErrInjected) }, crm.ErrUnavailable},
		{"CRM writes, answer lost", func(e *env, n int) { e.crm.LoseWrite = scenariotest.FailOnce(n, scenariotest.ErrInjected) }, crm.ErrUnavailable},
		{"state down after the write", nil, eventstest.ErrKilled},
	}
	cfgOf := func(f func(*scenarios.Config)) scenarios.Config {
		c := scenarios.Defaults()
		if f != nil {
			f(&c)
		}
		return c
	}

	for _, sc := range cases {
		// The run without failures is the expected end state.
		base := newEnv(t, cfgOf(sc.config))
		if sc.setup != nil {
			sc.setup(base)
		}
		base.handle(t, sc.o)
		want := base.crm.Created()
		_, writes := base.crm.Requests()
		require.NotZero(t, writes, sc.name)

		for _, st := range states {
			for _, f := range faults {
				for n := 1; n <= writes; n++ {
					t.Run(fmt.Sprintf("%s/%s/%s/write %d of %d", sc.name, st.name, f.name, n, writes), func(t *testing.T) {
						state := st.new(t)
						if f.inject == nil {
							// Save 1 stores the plan; save n+1 records write n.
							state = &eventstest.KilledAfter{State: state, Record: n + 1}
						}
						e := newEnvState(t, cfgOf(sc.config), state)
						if sc.setup != nil {
							sc.setup(e)
						}
						if f.inject != nil {
							f.inject(e, n)
						}

						_, err := e.eng.HandleCall(context.Background(), sc.o)
						require.Error(t, err)
						assert.ErrorIs(t, err, f.cause)
						assert.NotErrorIs(t, err, scenarios.ErrPermanent, "worth a retry")

						res := e.handle(t, sc.o)
						assert.True(t, res.Resumed)
						assert.Equal(t, want, e.crm.Created())

						// A third delivery changes nothing and writes nothing.
						_, w1 := e.crm.Requests()
						e.handle(t, sc.o)
						_, w2 := e.crm.Requests()
						assert.Equal(t, w1, w2)
						assert.Equal(t, want, e.crm.Created())
					})
				}
			}
		}
	}
}

// TestRetrySecondWriteFails is the plain story: the deal write fails once; the retry does
// not create the contact again, creates the deal on it, then the task and the note.
func TestRetrySecondWriteFails(t *testing.T) {
	e := newEnv(t, scenarios.Defaults())
	e.crm.FailWrite = scenariotest.FailOnce(2, scenariotest.ErrInjected)
	o := incoming("r2", false)

	res, err := e.eng.HandleCall(context.Background(), o)
	require.ErrorIs(t, err, crm.ErrUnavailable)
	assert.Equal(t, "contact 1001 done; lead on contact 1001 failed", res.String())
	assert.Len(t, e.crm.Created().Contacts, 1)
	assert.Empty(t, e.crm.Created().Leads)

	res = e.handle(t, o)
	assert.Equal(t, "contact 1001 earlier; lead 2001 on contact 1001 done; task 3001 on lead 2001 done; note on lead 2001 done", res.String())
	assert.Equal(t, scenariotest.Snapshot{
		Contacts: []scenariotest.Contact{newContact(1001, string(client), firstOperator, "r2", 2001)},
		Leads:    []scenariotest.Lead{newLead(2001, callFrom, firstOperator, 1001, "r2")},
		Tasks:    []scenariotest.Task{newTask(3001, missedText(o), firstOperator, crm.EntityLead, 2001, t0.Add(time.Hour), "r2")},
		Notes:    []crm.CallNote{note(o, crm.EntityLead, 2001, crm.CallStatusNotReached, scenarios.ResultMissed)},
	}, e.crm.Created())
	assert.Equal(t, 1, e.crm.Calls("CreateContacts"))
	assert.Equal(t, 2, e.crm.Calls("CreateLeads"))
}

// TestRetryKeepsPlan: a retry carries out the first attempt's plan even though the contact
// that attempt created now makes the number "known" (a fresh plan would put the task on the
// contact's responsible and might skip the deal).
func TestRetryKeepsPlan(t *testing.T) {
	cfg := scenarios.Defaults()
	cfg.Incoming.Known.CreateDealIfNoOpen = false
	e := newEnv(t, cfg)
	e.crm.FailWrite = scenariotest.FailOnce(2, scenariotest.ErrInjected)
	o := incoming("r3", true)
	_, err := e.eng.HandleCall(context.Background(), o)
	require.Error(t, err)

	res := e.handle(t, o)
	assert.False(t, res.Known)
	created := e.crm.Created()
	require.Len(t, created.Leads, 1, "the deal of the first plan")
	assert.Equal(t, crm.EntityLead, created.Notes[0].Entity)
}

// TestRetryAdoptsLostWrite: the CRM created the deal but its answer was lost; the retry
// finds that deal on the contact and uses it instead of creating a second one.
func TestRetryAdoptsLostWrite(t *testing.T) {
	e := newEnv(t, scenarios.Defaults())
	e.crm.LoseWrite = scenariotest.FailOnce(2, scenariotest.ErrInjected)
	o := incoming("r4", false)
	_, err := e.eng.HandleCall(context.Background(), o)
	require.ErrorIs(t, err, crm.ErrUnavailable)

	res := e.handle(t, o)
	assert.Equal(t, "contact 1001 earlier; lead 2001 on contact 1001 adopted; task 3001 on lead 2001 done; note on lead 2001 done", res.String())
	assert.Len(t, e.crm.Created().Leads, 1)
	assert.Equal(t, 1, e.crm.Calls("CreateLeads"))
}
