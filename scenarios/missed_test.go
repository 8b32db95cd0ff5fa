package scenarios_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/scenarios"
	"github.com/crmlink/crmlink/scenarios/scenariotest"
)

// TestMissedTask: who gets the call-back task, when it is due and what it is attached to.
func TestMissedTask(t *testing.T) {
	tests := []struct {
		name     string
		config   func(*scenarios.Config)
		known    bool
		openDeal bool
		outcome  func(o *routing.CallOutcome)
		want     []scenariotest.Task
	}{
		{
			name: "new client, first_operator: the first operator, on the new deal",
			want: []scenariotest.Task{newTask(3001, "", firstOperator, crm.EntityLead, 2001, t0.Add(time.Hour), "c1")},
		},
		{
			name:    "new client, first_operator but nobody rang: the default manager",
			config:  func(c *scenarios.Config) { c.Missed.DefaultManager = defaultManager },
			outcome: func(o *routing.CallOutcome) { o.FirstOperator = 0 },
			want:    []scenariotest.Task{newTask(3001, "", defaultManager, crm.EntityLead, 2001, t0.Add(time.Hour), "c1")},
		},
		{
			name: "new client, default_manager",
			config: func(c *scenarios.Config) {
				c.Missed.Responsible, c.Missed.DefaultManager = scenarios.ResponsibleDefaultManager, defaultManager
			},
			want: []scenariotest.Task{newTask(3001, "", defaultManager, crm.EntityLead, 2001, t0.Add(time.Hour), "c1")},
		},
		{
			name:  "known client, first_operator: the contact's responsible, on the new deal",
			known: true,
			want:  []scenariotest.Task{newTask(3001, "", contactOwner, crm.EntityLead, 2001, t0.Add(time.Hour), "c1")},
		},
		{
			name: "known client, default_manager: still the contact's responsible",
			config: func(c *scenarios.Config) {
				c.Missed.Responsible, c.Missed.DefaultManager = scenarios.ResponsibleDefaultManager, defaultManager
			},
			known: true, openDeal: true,
			want: []scenariotest.Task{newTask(3001, "", contactOwner, crm.EntityLead, 601, t0.Add(time.Hour), "c1")},
		},
		{
			name: "deadline 300s and own text",
			config: func(c *scenarios.Config) {
				c.Missed.Deadline, c.Missed.TaskText = 300*time.Second, "Call {national} back"
			},
			want: []scenariotest.Task{newTask(3001, "Call 9161234567 back", firstOperator, crm.EntityLead, 2001, t0.Add(5*time.Minute), "c1")},
		},
		{
			name:   "no deal created: on the new contact",
			config: func(c *scenarios.Config) { c.Incoming.Unknown.CreateDeal = false },
			want:   []scenariotest.Task{newTask(3001, "", firstOperator, crm.EntityContact, 1001, t0.Add(time.Hour), "c1")},
		},
		{
			name:   "create_task off: none",
			config: func(c *scenarios.Config) { c.Missed.CreateTask = false },
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
			o := incoming("c1", false)
			if tt.outcome != nil {
				tt.outcome(&o)
			}
			for i := range tt.want {
				if tt.want[i].Text == "" {
					tt.want[i].Text = missedText(o)
				}
			}
			e.handle(t, o)
			assert.Equal(t, tt.want, e.crm.Created().Tasks)
		})
	}
}

// laggingCRM is an amoCRM that does not list a task yet when it was just created.
type laggingCRM struct{ *scenariotest.CRM }

func (laggingCRM) OpenTasks(context.Context, crm.EntityType, int64) ([]crm.Task, error) {
	return nil, nil
}

// TestMissedTaskWindow: no second task for a client while the first one's deadline runs,
// a new one after it, whether the CRM lists the first task yet or not.
func TestMissedTaskWindow(t *testing.T) {
	for _, lag := range []bool{false, true} {
		name := "CRM lists new tasks"
		if lag {
			name = "CRM does not list new tasks yet"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, scenarios.Defaults())
			if lag {
				e.eng = e.engine(t, scenarios.Defaults(), e.crm, laggingCRM{e.crm})
			}
			first := incoming("c1", false)
			e.handle(t, first)
			require.Len(t, e.crm.Created().Tasks, 1)

			e.clock.Advance(30 * time.Minute)
			res := e.handle(t, at(incoming("c2", false), e.clock.Now()))
			assert.Len(t, e.crm.Created().Tasks, 1, "within the deadline: no second task")
			assert.Contains(t, res.Reasons, "missed call: +79161234567 already has a call-back task until 2026-03-02T11:00:00Z")

			e.clock.Advance(29*time.Minute + 59*time.Second)
			e.handle(t, at(incoming("c3", false), e.clock.Now()))
			assert.Len(t, e.crm.Created().Tasks, 1, "one second before the deadline: still none")

			e.clock.Advance(2 * time.Second)
			third := at(incoming("c4", false), e.clock.Now())
			e.handle(t, third)
			tasks := e.crm.Created().Tasks
			require.Len(t, tasks, 2, "after the deadline: a new task")
			// The client is known by now: the task goes to the contact's responsible, who is
			// the first operator of the first call.
			assert.Equal(t, newTask(3002, missedText(third), firstOperator, crm.EntityLead, 2001,
				e.clock.Now().Add(time.Hour), "c4"), tasks[1])
			// Every call still gets its note, on the deal the first call created.
			assert.Len(t, e.crm.Created().Notes, 4)
			assert.Len(t, e.crm.Created().Leads, 1)
		})
	}
}

// TestMissedTaskOpenInCRM: a call-back task the engine did not create (another integration,
// a manager, an engine whose state was lost) holds back a new one while it is open and due.
func TestMissedTaskOpenInCRM(t *testing.T) {
	tests := []struct {
		name   string
		task   crm.Task
		onDeal bool
		want   int // tasks created
	}{
		{name: "open call task due later on the deal", task: crm.Task{TypeID: crm.TaskTypeCall, CompleteTill: t0.Add(30 * time.Minute)}, onDeal: true, want: 0},
		{name: "open call task due later on the contact", task: crm.Task{TypeID: crm.TaskTypeCall, CompleteTill: t0.Add(30 * time.Minute)}, want: 0},
		{name: "overdue call task", task: crm.Task{TypeID: crm.TaskTypeCall, CompleteTill: t0.Add(-time.Minute)}, onDeal: true, want: 1},
		{name: "completed call task", task: crm.Task{TypeID: crm.TaskTypeCall, CompleteTill: t0.Add(30 * time.Minute), Completed: true}, onDeal: true, want: 1},
		{name: "a meeting, not a call", task: crm.Task{TypeID: 2, CompleteTill: t0.Add(30 * time.Minute)}, onDeal: true, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, scenarios.Defaults())
			c := e.knownClient()
			l := e.openLead(c)
			tt.task.ID, tt.task.Entity, tt.task.EntityID = 901, crm.EntityContact, c
			if tt.onDeal {
				tt.task.Entity, tt.task.EntityID = crm.EntityLead, l
			}
			e.crm.AddTask(tt.task)
			e.handle(t, incoming("c1", false))
			assert.Len(t, e.crm.Created().Tasks, tt.want)
		})
	}
}
