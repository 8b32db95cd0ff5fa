package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
)

// defaultManager takes callbacks of missed calls nobody on the line can be blamed for.
const defaultManager = glebUser

func withScenarios(c *config.Config) {
	c.Scenarios.Missed.Responsible = "default_manager"
	c.Scenarios.Missed.DefaultManager = defaultManager
}

// missedCall places a call that nobody answers: crmlink sends it to the operator desk,
// the desk rings, and the client gives up.
func missedCall(t *testing.T, s *stack, operator *siptest.Phone, number string) {
	t.Helper()
	call := dial(t, s.ast, newCaller(t, s.ast, number), ariExten)
	nextIncoming(t, operator, callWait)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, call.Hangup(ctx))
	o := s.nextOutcome(t)
	require.False(t, o.Answered)
}

// waitCreated polls the sandbox until what crmlink created satisfies cond.
func waitCreated(t *testing.T, s *stack, what string, cond func(sandbox.Created) bool) sandbox.Created {
	t.Helper()
	var c sandbox.Created
	testrig.WaitFor(t, 15*time.Second, what, func() bool {
		c = s.crm.Created()
		return cond(c)
	})
	return c
}

func TestScenarioMissedCallFromUnknownNumber(t *testing.T) {
	s := startStack(t, withScenarios)
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)
	number := "84957770001"

	start := time.Now()
	missedCall(t, s, operator, number)
	c := waitCreated(t, s, "contact, deal and task", func(c sandbox.Created) bool { return len(c.Tasks) > 0 })

	require.Len(t, c.Contacts, 1, "one contact")
	assert.Contains(t, c.Contacts[0].Phones, "+74957770001")
	require.Len(t, c.Leads, 1, "one deal")
	assert.Equal(t, []int64{c.Contacts[0].ID}, c.Leads[0].ContactIDs, "the deal is on the contact")
	require.Len(t, c.Tasks, 1, "one callback task")
	task := c.Tasks[0]
	assert.Equal(t, "leads", task.EntityType)
	assert.Equal(t, c.Leads[0].ID, task.EntityID, "the task is on the new deal")
	assert.Equal(t, int64(defaultManager), task.ResponsibleUserID)
	due := time.Unix(task.CompleteTill, 0)
	assert.WithinDuration(t, start.Add(3600*time.Second), due, 15*time.Second, "due in 3600 s")

	// A second missed call while the task runs adds no task.
	missedCall(t, s, operator, number)
	c = waitCreated(t, s, "the second call's note", func(c sandbox.Created) bool { return len(c.Notes) >= 2 })
	assert.Len(t, c.Tasks, 1, "no second task within the deadline")
	assert.Len(t, c.Contacts, 1, "the caller is known now")
}

func TestScenarioNewTaskAfterTheDeadline(t *testing.T) {
	const deadline = 3 * time.Second
	s := startStack(t, withScenarios, func(c *config.Config) { c.Scenarios.Missed.Deadline = deadline })
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)
	number := "84957770002"

	missedCall(t, s, operator, number)
	c := waitCreated(t, s, "the first task", func(c sandbox.Created) bool { return len(c.Tasks) == 1 })
	firstDue := time.Unix(c.Tasks[0].CompleteTill, 0)

	missedCall(t, s, operator, number)
	c = waitCreated(t, s, "the second call's note", func(c sandbox.Created) bool { return len(c.Notes) >= 2 })
	require.Len(t, c.Tasks, 1, "within the deadline: no new task")

	// The deadline is a point in time; wait for it to pass.
	time.Sleep(time.Until(firstDue) + time.Second)
	missedCall(t, s, operator, number)
	c = waitCreated(t, s, "a new task after the deadline", func(c sandbox.Created) bool { return len(c.Tasks) == 2 })
	assert.True(t, time.Unix(c.Tasks[1].CompleteTill, 0).After(firstDue))
}

func TestScenarioAnsweredKnownClientWithOpenDeal(t *testing.T) {
	s := startStack(t, withScenarios)
	anna := managerPhone(t, s.ast, "101")
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)
	in := nextIncoming(t, anna, callWait)
	answerAndCheckBridged(t, s, in, call, annaClient, annaUser, "crm")
	hangupBoth(t, in, call)
	o := s.nextOutcome(t)

	c := waitCreated(t, s, "the call note", func(c sandbox.Created) bool { return len(c.Notes) > 0 })
	assert.Empty(t, c.Leads, "the client has an open deal: no new one")
	assert.Empty(t, c.Contacts)
	assert.Empty(t, c.Tasks)
	require.Len(t, c.Notes, 1, "one note")
	n := c.Notes[0]
	assert.Equal(t, sandbox.NoteCallIn, n.NoteType)
	assert.Equal(t, "leads", n.EntityType)
	assert.Equal(t, int64(4001), n.EntityID, "on the open deal")
	assert.Equal(t, o.ID, n.Params.Uniq, "the call's linkedid makes it idempotent")
	assert.Equal(t, 4, n.Params.CallStatus, "conversation took place")
}
