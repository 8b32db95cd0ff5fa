package intake_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crmlink/crmlink/chatbridge/intake"
	"github.com/crmlink/crmlink/crm"
)

const sample = `
enabled: true
mode: unsorted
events: [chat_accepted, offline_message, chat_finished]
duplicates: {by: [phone, email, custom_field], match: all, custom_field_id: 100101, custom_field_name: INN, custom_field_pattern: '\b(\d{10}|\d{12})\b'}
existing_client: {no_open_deal: note_on_contact}
rules:
  - name: newsletter
    when: {form: [offline], page: ["*/subscribe*"]}
    action: contact_only
  - name: ads
    when: {utm_source: [google], utm_medium: [cpc], location: [Moscow]}
    action: contact_and_deal
    pipeline_id: 7001
    status_id: 7101
    group: sales
    tags: [ads]
default: {action: contact_and_deal, group: sales}
groups:
  - {name: sales, managers: [11, 12, 13]}
default_responsible: 11
`

func decode(t *testing.T, text string) intake.Config {
	t.Helper()
	c := intake.Defaults()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(text)))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&c))
	return c
}

func TestConfigDecodes(t *testing.T) {
	c := decode(t, sample)
	assert.Empty(t, c.Validate())
	assert.Equal(t, intake.ModeUnsorted, c.Mode)
	assert.Equal(t, intake.Target{Action: intake.ActionContactAndDeal, PipelineID: 7001, StatusID: 7101, Group: "sales", Tags: []string{"ads"}}, c.Rules[1].Target)
	assert.Equal(t, []crm.UserID{11, 12, 13}, c.Groups[0].Managers)
	assert.Equal(t, intake.DefaultRemember, c.Remember, "a key left out keeps its default")

	dec := yaml.NewDecoder(bytes.NewReader([]byte("enabled: true\nduplicate: {by: [phone]}\n")))
	dec.KnownFields(true)
	c = intake.Defaults()
	assert.Error(t, dec.Decode(&c), "a misspelt key is an error")
	assert.Empty(t, intake.Defaults().Validate())
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"mode", "mode: auto", []string{`chat.leads.mode: is "auto"; allowed: direct, unsorted`}},
		{"events", "enabled: true\nevents: [chat_updated]", []string{`chat.leads.events[0]: is "chat_updated"; allowed: chat_accepted, offline_message, chat_finished`}},
		{"no events", "enabled: true\nevents: []", []string{`chat.leads.events: is empty while chat.leads.enabled is true; list at least one of chat_accepted, offline_message, chat_finished`}},
		{"duplicate field", "duplicates: {by: [phone, inn, phone]}", []string{
			`chat.leads.duplicates.by[1]: is "inn"; allowed: phone, email, custom_field`,
			`chat.leads.duplicates.by[2]: is "phone", listed twice; list each field once`}},
		{"custom field without id and pattern", "duplicates: {by: [custom_field], match: both}", []string{
			`chat.leads.duplicates.match: is "both"; allowed: any (one field is enough), all (every field the visitor gave)`,
			`chat.leads.duplicates.custom_field_id: is 0 while duplicates.by lists custom_field; allowed: the amoCRM field id (a positive number)`,
			`chat.leads.duplicates.custom_field_pattern: is empty while duplicates.by lists custom_field; set a regular expression that finds the value, such as \b(\d{10}|\d{12})\b for an INN`}},
		{"bad pattern", "duplicates: {by: [custom_field], custom_field_id: 5, custom_field_pattern: '('}", []string{
			"chat.leads.duplicates.custom_field_pattern: is not a regular expression: error parsing regexp: missing closing ): `(`"}},
		{"existing client", "existing_client: {no_open_deal: ask}", []string{`chat.leads.existing_client.no_open_deal: is "ask"; allowed: create_deal, note_on_contact`}},
		{"rules", "rules: [{name: a, action: call}, {name: a, action: ignore, group: night, pipeline_id: -1}, {action: contact_only}]", []string{
			`chat.leads.rules[0].action: is "call"; allowed: contact_and_deal, contact_only, ignore`,
			`chat.leads.rules[1].name: is "a", already the name of chat.leads.rules[0]; names must be unique`,
			`chat.leads.rules[1].pipeline_id: is -1; allowed: an amoCRM pipeline id, or 0 for the main pipeline`,
			`chat.leads.rules[1].group: is "night", which is not in chat.leads.groups; allowed: the name of a configured group`,
			`chat.leads.rules[2].name: is empty; name every rule (logs and results name the rule that decided)`}},
		{"groups", "groups: [{name: sales, managers: [11, 11, 0]}, {name: sales}]", []string{
			`chat.leads.groups[0].managers[1]: is 11, listed twice in the group; list each manager once`,
			`chat.leads.groups[0].managers[2]: is 0; allowed: a CRM user id (a positive number)`,
			`chat.leads.groups[1].name: is "sales", already the name of another group; names must be unique`,
			`chat.leads.groups[1].managers: is empty; list the CRM user ids of the group's managers`}},
		{"default", "default: {action: ''}\ndefault_responsible: -1\nremember: 1m\nsource_name: ' '", []string{
			`chat.leads.default.action: is empty; allowed: contact_and_deal, contact_only, ignore`,
			`chat.leads.default_responsible: is -1; allowed: a CRM user id, or 0 for none`,
			`chat.leads.source_name: is empty; allowed: a name such as Jivo, shown in Unsorted and notes`,
			`chat.leads.remember: is 1m0s; allowed: 1h or more, written with a unit such as 720h`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, []string(decode(t, tt.yaml).Validate()))
		})
	}
}

func TestNewRefuses(t *testing.T) {
	r := newRig(t)
	cfg := config()
	_, err := intake.New(cfg, r.client, r.state) // no managers given
	assert.ErrorContains(t, err, "chat.leads.groups[0].managers[0]: is 11, which is not in managers:")
	cfg.Mode = "auto"
	_, err = intake.New(cfg, r.client, r.state)
	assert.ErrorContains(t, err, `chat.leads.mode: is "auto"`)
}
