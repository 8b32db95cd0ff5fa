package scenarios_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/scenarios"
	"github.com/crmlink/crmlink/scenarios/scenariotest"
)

// TestOutgoing: outgoing.unknown, outgoing.known and outgoing.unanswered.
func TestOutgoing(t *testing.T) {
	answered, unanswered := outgoing("o1", true), outgoing("o1", false)
	coldCalling := func(c *scenarios.Config) {
		c.Outgoing.Unknown.CreateContact, c.Outgoing.Unknown.CreateDeal = true, true
		c.Outgoing.Known.CreateDealIfNoOpen = true
	}
	tests := []struct {
		name     string
		config   func(*scenarios.Config)
		known    bool
		openDeal bool
		answered bool
		want     scenariotest.Snapshot
		reasons  []string
	}{
		{
			name: "unknown, answered, switched on: contact and deal on the caller", config: coldCalling, answered: true,
			want: scenariotest.Snapshot{
				Contacts: []scenariotest.Contact{newContact(1001, string(client), caller, "o1", 2001)},
				Leads:    []scenariotest.Lead{newLead(2001, callTo, caller, 1001, "o1")},
				Notes:    []crm.CallNote{note(answered, crm.EntityLead, 2001, crm.CallStatusAnswered, "")},
			},
		},
		{
			name: "unknown, answered, contact only",
			config: func(c *scenarios.Config) {
				c.Outgoing.Unknown.CreateContact = true
			},
			answered: true,
			want: scenariotest.Snapshot{
				Contacts: []scenariotest.Contact{newContact(1001, string(client), caller, "o1")},
				Notes:    []crm.CallNote{note(answered, crm.EntityContact, 1001, crm.CallStatusAnswered, "")},
			},
		},
		{
			name: "unknown, answered, defaults: nothing", answered: true,
			reasons: []string{
				"outgoing.unknown.create_contact is off: nothing is created for the number",
				"call note: no contact or deal to put it on",
			},
		},
		{
			name: "unknown, unanswered, switched on: nothing for a number that never answered", config: coldCalling,
			reasons: []string{
				"the outgoing call was not answered: no contact or deal is created for it",
				"call note: no contact or deal to put it on",
			},
		},
		{
			name: "known with open deal, answered: nothing but the note", config: coldCalling, known: true, openDeal: true, answered: true,
			want: scenariotest.Snapshot{Notes: []crm.CallNote{note(answered, crm.EntityLead, 601, crm.CallStatusAnswered, "")}},
		},
		{
			name: "known without open deal, answered, switched on: a deal for the contact's responsible", config: coldCalling, known: true, answered: true,
			want: scenariotest.Snapshot{
				Leads: []scenariotest.Lead{newLead(2001, callTo, contactOwner, 501, "o1")},
				Notes: []crm.CallNote{note(answered, crm.EntityLead, 2001, crm.CallStatusAnswered, "")},
			},
		},
		{
			name: "known without open deal, answered, defaults: the note on the contact", known: true, answered: true,
			want:    scenariotest.Snapshot{Notes: []crm.CallNote{note(answered, crm.EntityContact, 501, crm.CallStatusAnswered, "")}},
			reasons: []string{"the client has no open deal and create_deal_if_no_open is off"},
		},
		{
			name: "known with open deal, unanswered: a not-reached note", known: true, openDeal: true,
			want: scenariotest.Snapshot{Notes: []crm.CallNote{note(unanswered, crm.EntityLead, 601, crm.CallStatusNotReached, "Not reached")}},
		},
		{
			name: "known without deal, unanswered, switched on: a not-reached note on the contact, no deal", config: coldCalling, known: true,
			want:    scenariotest.Snapshot{Notes: []crm.CallNote{note(unanswered, crm.EntityContact, 501, crm.CallStatusNotReached, "Not reached")}},
			reasons: []string{"the outgoing call was not answered: no contact or deal is created for it"},
		},
		{
			name: "known, unanswered, not_reached_note off: nothing", known: true, openDeal: true,
			config: func(c *scenarios.Config) { c.Outgoing.Unanswered.NotReachedNote = false },
		},
		{
			name: "known, answered, call_notes off: nothing", known: true, openDeal: true, answered: true,
			config: func(c *scenarios.Config) { c.Notes.CallNotes = false },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := scenarios.Defaults()
			if tt.config != nil {
				tt.config(&cfg)
			}
			e := newEnv(t, cfg)
			if tt.known {
				c := e.knownClient()
				if tt.openDeal {
					e.openLead(c)
				}
			}
			o := unanswered
			if tt.answered {
				o = answered
			}
			res := e.handle(t, o)
			assert.Equal(t, tt.want, e.crm.Created())
			assert.Equal(t, tt.reasons, res.Reasons)
		})
	}
}

// TestOutgoingNeverCreatesTasks: the missed-call task is for incoming calls only.
func TestOutgoingNeverCreatesTasks(t *testing.T) {
	e := newEnv(t, scenarios.Defaults())
	e.openLead(e.knownClient())
	e.handle(t, outgoing("o1", false))
	assert.Empty(t, e.crm.Created().Tasks)
}
