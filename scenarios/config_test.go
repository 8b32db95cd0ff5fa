package scenarios_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/scenarios"
	"github.com/crmlink/crmlink/scenarios/scenariotest"
)

func TestDefaultsAreValid(t *testing.T) {
	assert.Empty(t, scenarios.Defaults().Validate())
	d := scenarios.Defaults()
	assert.Equal(t, time.Hour, d.Missed.Deadline)
	assert.Equal(t, scenarios.ModeDirect, d.Incoming.Unknown.Mode)
	assert.True(t, d.Notes.CallNotes)
}

// TestConfigValidate: every message names its key under scenarios. and what is allowed.
func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *scenarios.Config)
		want   []string
	}{
		{
			name:   "unknown mode",
			change: func(c *scenarios.Config) { c.Incoming.Unknown.Mode = "sorted" },
			want:   []string{`scenarios.incoming.unknown.mode is "sorted"; allowed: direct, unsorted, unsorted_until_answered`},
		},
		{
			name:   "deal without contact",
			change: func(c *scenarios.Config) { c.Incoming.Unknown.CreateContact = false },
			want: []string{"scenarios.incoming.unknown.create_deal is true while create_contact is false; a deal cannot be created " +
				"without a contact (the phone number lives on the contact): set create_contact: true or create_deal: false"},
		},
		{
			name: "Unsorted without a deal",
			change: func(c *scenarios.Config) {
				c.Incoming.Unknown.Mode, c.Incoming.Unknown.CreateDeal = scenarios.ModeUnsortedUntilAnswered, false
			},
			want: []string{"scenarios.incoming.unknown.create_deal is false with mode unsorted_until_answered: a manager accepting " +
				"an amoCRM Unsorted entry always gets a deal with the contact; set create_deal: true, or mode: direct for a contact alone"},
		},
		{
			name: "Unsorted with nothing to create is allowed",
			change: func(c *scenarios.Config) {
				c.Incoming.Unknown.Mode, c.Incoming.Unknown.CreateContact, c.Incoming.Unknown.CreateDeal = scenarios.ModeUnsorted, false, false
			},
		},
		{
			name:   "outgoing deal without contact",
			change: func(c *scenarios.Config) { c.Outgoing.Unknown.CreateDeal = true },
			want: []string{"scenarios.outgoing.unknown.create_deal is true while create_contact is false; a deal cannot be created " +
				"without a contact (the phone number lives on the contact): set create_contact: true or create_deal: false"},
		},
		{
			name:   "unknown responsible",
			change: func(c *scenarios.Config) { c.Missed.Responsible = "owner" },
			want:   []string{`scenarios.missed.responsible is "owner"; allowed: first_operator, default_manager`},
		},
		{
			name:   "default_manager rule without a manager",
			change: func(c *scenarios.Config) { c.Missed.Responsible = scenarios.ResponsibleDefaultManager },
			want:   []string{"scenarios.missed.default_manager is not set; responsible: default_manager needs the CRM user id of the manager who calls back"},
		},
		{
			name:   "negative manager",
			change: func(c *scenarios.Config) { c.Missed.DefaultManager = -4 },
			want:   []string{"scenarios.missed.default_manager is -4; allowed: a CRM user id (a positive number), or 0 for none"},
		},
		{
			name:   "deadline as a bare number",
			change: func(c *scenarios.Config) { c.Missed.Deadline = 3600 },
			want:   []string{"scenarios.missed.deadline is 3.6µs; allowed: 1s to 720h, written with a unit such as 3600s or 1h (a bare number is read as nanoseconds)"},
		},
		{
			name:   "deadline too long",
			change: func(c *scenarios.Config) { c.Missed.Deadline = 31 * 24 * time.Hour },
			want:   []string{"scenarios.missed.deadline is 744h0m0s; allowed: 1s to 720h, written with a unit such as 3600s or 1h (a bare number is read as nanoseconds)"},
		},
		{
			name:   "empty task text",
			change: func(c *scenarios.Config) { c.Missed.TaskText = " " },
			want:   []string{`scenarios.missed.task_text is empty; write a template such as "Call from {phone}"`},
		},
		{
			name:   "empty task text is fine when no task is created",
			change: func(c *scenarios.Config) { c.Missed.TaskText, c.Missed.CreateTask = "", false },
		},
		{
			name:   "unknown placeholder",
			change: func(c *scenarios.Config) { c.Incoming.Known.DealName = "Call from {client}" },
			want: []string{"scenarios.incoming.known.deal_name uses {client}; allowed placeholders: {phone} (+74951234567), " +
				"{national} (4951234567), {called} (the dialled number), {date} (2006-01-02), {time} (15:04)"},
		},
		{
			name:   "stage without pipeline",
			change: func(c *scenarios.Config) { c.Incoming.Unknown.StatusID = 7701 },
			want:   []string{"scenarios.incoming.unknown.status_id is 7701 while pipeline_id is 0; set the pipeline_id the stage belongs to"},
		},
		{
			name:   "closed stage",
			change: func(c *scenarios.Config) { c.Outgoing.Known.PipelineID, c.Outgoing.Known.StatusID = 77, 142 },
			want:   []string{"scenarios.outgoing.known.status_id is 142, a closed stage (142 won, 143 lost); a new deal must start in an open stage"},
		},
		{
			name:   "negative ids",
			change: func(c *scenarios.Config) { c.Incoming.Known.PipelineID, c.Incoming.Known.StatusID = -1, -2 },
			want: []string{
				"scenarios.incoming.known.pipeline_id is -1; allowed: a pipeline id, or 0 for the account's main pipeline",
				"scenarios.incoming.known.status_id is -2; allowed: a stage id, or 0 for the pipeline's first stage",
			},
		},
		{
			name:   "empty tag",
			change: func(c *scenarios.Config) { c.Incoming.Unknown.Tags = []string{"calls", ""} },
			want:   []string{"scenarios.incoming.unknown.tags[1] is empty; allowed: a tag name"},
		},
		{
			name:   "empty deal name",
			change: func(c *scenarios.Config) { c.Incoming.Unknown.DealName = "" },
			want:   []string{`scenarios.incoming.unknown.deal_name is empty; write a template such as "Call from {phone}"`},
		},
		{
			name:   "empty source",
			change: func(c *scenarios.Config) { c.Notes.Source = "" },
			want:   []string{"scenarios.notes.source is empty; name the source shown on call notes and Unsorted entries, e.g. crmlink"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := scenarios.Defaults()
			tt.change(&c)
			assert.Equal(t, tt.want, c.Validate())
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	c := scenarios.Defaults()
	c.Incoming.Unknown.Mode = "x"
	fake := scenariotest.New()
	_, err := scenarios.New(c, fake, fake, events.NewMemoryState())
	assert.EqualError(t, err, "rules: invalid scenarios:\n"+`scenarios.incoming.unknown.mode is "x"; allowed: direct, unsorted, unsorted_until_answered`)
}

// decode reads a scenarios: section the way internal/config reads crmlink.yaml: over the
// defaults, unknown keys rejected.
func decode(t *testing.T, doc string) (scenarios.Config, error) {
	t.Helper()
	c := scenarios.Defaults()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	return c, err
}

func TestConfigYAML(t *testing.T) {
	c, err := decode(t, `
incoming:
  unknown:
    mode: unsorted_until_answered
    pipeline_id: 77
    status_id: 7701
    tags: [call]
  known:
    create_deal_if_no_open: false
missed:
  deadline: 300s
  responsible: default_manager
  default_manager: 14
outgoing:
  unknown:
    create_contact: true
`)
	require.NoError(t, err)
	require.Empty(t, c.Validate())
	want := scenarios.Defaults()
	want.Incoming.Unknown.Mode = scenarios.ModeUnsortedUntilAnswered
	want.Incoming.Unknown.PipelineID, want.Incoming.Unknown.StatusID = 77, 7701
	want.Incoming.Unknown.Tags = []string{"call"}
	want.Incoming.Known.CreateDealIfNoOpen = false
	want.Missed.Deadline = 5 * time.Minute
	want.Missed.Responsible, want.Missed.DefaultManager = scenarios.ResponsibleDefaultManager, 14
	want.Outgoing.Unknown.CreateContact = true
	assert.Equal(t, want, c)

	_, err = decode(t, "missed:\n  dedline: 1h\n")
	assert.ErrorContains(t, err, "field dedline not found")
}

// TestConfigYAMLShape pins the documented shape and defaults of `scenarios:`.
func TestConfigYAMLShape(t *testing.T) {
	out, err := yaml.Marshal(scenarios.Defaults())
	require.NoError(t, err)
	assert.Equal(t, `incoming:
    unknown:
        create_contact: true
        create_deal: true
        mode: direct
        pipeline_id: 0
        status_id: 0
        deal_name: Call from {phone}
        contact_name: '{phone}'
        tags: []
    known:
        create_deal_if_no_open: true
        pipeline_id: 0
        status_id: 0
        deal_name: Call from {phone}
        tags: []
missed:
    create_task: true
    deadline: 1h0m0s
    task_text: 'Call back {phone}: missed call at {time}'
    responsible: first_operator
    default_manager: 0
outgoing:
    unknown:
        create_contact: false
        create_deal: false
        pipeline_id: 0
        status_id: 0
        deal_name: Call to {phone}
        contact_name: '{phone}'
        tags: []
    known:
        create_deal_if_no_open: false
        pipeline_id: 0
        status_id: 0
        deal_name: Call to {phone}
        tags: []
    unanswered:
        not_reached_note: true
notes:
    call_notes: true
    source: crmlink
`, string(out))
	// What the engine prints is what it reads back ("tags: []" reads as an empty list).
	back, err := decode(t, string(out))
	require.NoError(t, err)
	for _, tags := range []*[]string{&back.Incoming.Unknown.Tags, &back.Incoming.Known.Tags,
		&back.Outgoing.Unknown.Tags, &back.Outgoing.Known.Tags} {
		assert.Empty(t, *tags)
		*tags = nil
	}
	assert.Equal(t, scenarios.Defaults(), back)
}
