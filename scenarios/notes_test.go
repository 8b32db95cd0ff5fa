package scenarios_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/scenarios"
)

// TestCallNotes: each call's note lands on the deal created or found, else the contact, and
// carries the call's id as uniq, its talk time, status, recording and who took it.
func TestCallNotes(t *testing.T) {
	tests := []struct {
		name    string
		config  func(*scenarios.Config)
		setup   func(e *env)
		outcome routing.CallOutcome
		want    []crm.CallNote
	}{
		{
			name:    "answered from a new number: on the new deal, with the recording",
			outcome: incoming("n1", true),
			want: []crm.CallNote{{Entity: crm.EntityLead, EntityID: 2001, Direction: crm.CallIn, Uniq: "n1", Phone: client,
				Duration: talk, Status: crm.CallStatusAnswered, Link: "https://pbx.example/rec/n1.mp3", Responsible: answeredBy, Source: "crmlink"}},
		},
		{
			name:    "missed from a known client with an open deal: on the deal, credited to the first operator",
			setup:   func(e *env) { e.openLead(e.knownClient()) },
			outcome: incoming("n2", false),
			want: []crm.CallNote{{Entity: crm.EntityLead, EntityID: 601, Direction: crm.CallIn, Uniq: "n2", Phone: client,
				Status: crm.CallStatusNotReached, Result: "Missed call", Source: "crmlink", Responsible: firstOperator}},
		},
		{
			name:    "answered from a known client without a deal, deal creation off: on the contact",
			config:  func(c *scenarios.Config) { c.Incoming.Known.CreateDealIfNoOpen = false },
			setup:   func(e *env) { e.knownClient() },
			outcome: incoming("n3", true),
			want: []crm.CallNote{{Entity: crm.EntityContact, EntityID: 501, Direction: crm.CallIn, Uniq: "n3", Phone: client,
				Duration: talk, Status: crm.CallStatusAnswered, Link: "https://pbx.example/rec/n3.mp3", Responsible: answeredBy, Source: "crmlink"}},
		},
		{
			name:    "outgoing answered to a known client: call_out by the caller",
			setup:   func(e *env) { e.openLead(e.knownClient()) },
			outcome: outgoing("n4", true),
			want: []crm.CallNote{{Entity: crm.EntityLead, EntityID: 601, Direction: crm.CallOut, Uniq: "n4", Phone: client,
				Duration: talk, Status: crm.CallStatusAnswered, Responsible: caller, Source: "crmlink"}},
		},
		{
			name:    "own source name",
			config:  func(c *scenarios.Config) { c.Notes.Source = "Office PBX" },
			setup:   func(e *env) { e.openLead(e.knownClient()) },
			outcome: outgoing("n5", false),
			want: []crm.CallNote{{Entity: crm.EntityLead, EntityID: 601, Direction: crm.CallOut, Uniq: "n5", Phone: client,
				Status: crm.CallStatusNotReached, Result: "Not reached", Responsible: caller, Source: "Office PBX"}},
		},
		{
			name:  "a transferred call names everyone who talked, credited to the one the outcome names",
			setup: func(e *env) { e.openLead(e.knownClient()) },
			outcome: func() routing.CallOutcome {
				o := incoming("n8", true)
				o.Talkers = []routing.Talker{{Endpoint: "PJSIP/101", User: 7, Name: "Anna", Talk: 42 * time.Second},
					{Endpoint: "PJSIP/102", User: answeredBy, Name: "Boris", Talk: 185 * time.Second}}
				return o
			}(),
			want: []crm.CallNote{{Entity: crm.EntityLead, EntityID: 601, Direction: crm.CallIn, Uniq: "n8", Phone: client,
				Duration: talk, Status: crm.CallStatusAnswered, Link: "https://pbx.example/rec/n8.mp3", Responsible: answeredBy,
				Result: "Talked: Anna 0:42, Boris 3:05", Source: "crmlink"}},
		},
		{
			name:    "call_notes off: no note on incoming calls",
			config:  func(c *scenarios.Config) { c.Notes.CallNotes = false },
			setup:   func(e *env) { e.openLead(e.knownClient()) },
			outcome: incoming("n6", true),
		},
		{
			name:    "call_notes off: not_reached_note still rules unanswered outgoing calls",
			config:  func(c *scenarios.Config) { c.Notes.CallNotes = false },
			setup:   func(e *env) { e.openLead(e.knownClient()) },
			outcome: outgoing("n7", false),
			want: []crm.CallNote{{Entity: crm.EntityLead, EntityID: 601, Direction: crm.CallOut, Uniq: "n7", Phone: client,
				Status: crm.CallStatusNotReached, Result: "Not reached", Responsible: caller, Source: "crmlink"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := scenarios.Defaults()
			if tt.config != nil {
				tt.config(&cfg)
			}
			e := newEnv(t, cfg)
			if tt.setup != nil {
				tt.setup(e)
			}
			e.handle(t, tt.outcome)
			assert.Equal(t, tt.want, e.crm.Created().Notes)
		})
	}
}

// TestDuplicateDelivery: the queue delivering an outcome twice writes nothing the second time.
func TestDuplicateDelivery(t *testing.T) {
	e := newEnv(t, scenarios.Defaults())
	o := incoming("d1", false)
	first := e.handle(t, o)
	before := e.crm.Created()
	_, writesBefore := e.crm.Requests()

	e.clock.Advance(2 * time.Hour) // past the task deadline: a fresh plan would create a task
	second := e.handle(t, o)
	assert.Equal(t, before, e.crm.Created())
	_, writesAfter := e.crm.Requests()
	assert.Equal(t, writesBefore, writesAfter, "no write at all")
	assert.True(t, second.Resumed)
	for i, s := range second.Steps {
		assert.Equal(t, scenarios.StepEarlier, s.Status, s.Kind)
		assert.Equal(t, first.Steps[i].ID, s.ID, s.Kind)
	}
	assert.Equal(t, "contact 1001 earlier; lead 2001 on contact 1001 earlier; task 3001 on lead 2001 earlier; note on lead 2001 earlier", second.String())
}

// TestConcurrentOutcomes: one engine handles many calls at once (the queue's workers).
func TestConcurrentOutcomes(t *testing.T) {
	e := newEnv(t, scenarios.Defaults())
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := incoming(fmt.Sprintf("k%d", i), i%2 == 0)
			o.Caller = fmt.Sprintf("8916000%04d", i)
			_, err := e.eng.HandleCall(context.Background(), o)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	created := e.crm.Created()
	assert.Len(t, created.Contacts, n)
	assert.Len(t, created.Leads, n)
	assert.Len(t, created.Tasks, n/2)
	assert.Len(t, created.Notes, n)
}
