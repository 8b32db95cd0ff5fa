package sandbox

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadSeedExample(t *testing.T) {
	s, err := LoadSeed("testdata/seed.yaml")
	require.NoError(t, err)
	assert.Len(t, s.Users, 3)
	assert.Len(t, s.Contacts, 4)
	assert.Equal(t, "sandbox-token", s.Token)
	assert.Equal(t, 7, s.RateLimit)
	require.NotNil(t, s.OAuth)
	assert.Equal(t, "sandbox-refresh-1", s.OAuth.RefreshToken)
	assert.Equal(t, []string{"+7 (495) 123-45-67", "8 916 000-11-22"}, s.Contacts[0].Phones)
	assert.Equal(t, int64(1001), s.APIUserID)
	assert.Equal(t, Pipeline{ID: 5001, StatusID: 5101}, s.Pipeline)
}

func TestSeedEmailsTagsAndDefaults(t *testing.T) {
	s, err := ParseSeed([]byte(`
users: [{id: 1, name: A}]
contacts: [{id: 10, name: C, responsible_user_id: 1, emails: [c@example.com]}]
leads: [{id: 20, name: L, status_id: 5, pipeline_id: 6, responsible_user_id: 1, tags: [vip], contact_ids: [10]}]
`))
	require.NoError(t, err)
	sb := New(s, WithRateLimit(-1))
	defer sb.Close()
	st := sb.State()
	assert.Equal(t, []string{"c@example.com"}, st.Contacts[0].Emails)
	assert.Equal(t, []string{"vip"}, st.Leads[0].Tags)
	assert.Equal(t, Pipeline{ID: DefaultPipelineID, StatusID: DefaultStatusID}, st.Pipeline)
	assert.Zero(t, st.APIUserID)
}

func TestParseSeedRejects(t *testing.T) {
	cases := []struct {
		name, seed, want string
	}{
		{"unknown key", "userz: []", "field userz not found"},
		{"unknown nested key", "users: [{id: 1, nme: x}]", "field nme not found"},
		{"duplicate id", "users: [{id: 1}, {id: 1}]", "user id 1 appears twice"},
		{"zero id", "contacts: [{id: 0}]", "contact id 0: ids must be positive"},
		{"dangling company", "contacts: [{id: 1, company_id: 9}]", "contact 1: company_id 9 is not in companies"},
		{"dangling lead", "contacts: [{id: 1, lead_ids: [9]}]", "contact 1: lead 9 is not in leads"},
		{"dangling contact", "leads: [{id: 1, contact_ids: [9]}]", "lead 1: contact 9 is not in contacts"},
		{"bad webhook", "webhook_url: ftp://x", `webhook_url "ftp://x": want an http or https URL`},
		{"unknown api user", "users: [{id: 1}]\napi_user_id: 2", "api_user_id 2 is not in users"},
		{"negative pipeline", "pipeline: {id: -1}", "pipeline id and status_id must not be negative"},
		{"not yaml", "users: [", "decode"},
		{"wrong type", "users: {id: 1}", "decode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSeed([]byte(c.seed))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestParseSeedJSONAndEmpty(t *testing.T) {
	s, err := ParseSeed([]byte(`{"users":[{"id":5,"name":"A"}],"leads":[{"id":7,"name":"L","status_id":1,"pipeline_id":2,"responsible_user_id":5}]}`))
	require.NoError(t, err)
	assert.Equal(t, int64(5), s.Users[0].ID)
	assert.Equal(t, int64(7), s.Leads[0].ID)

	s, err = ParseSeed(nil)
	require.NoError(t, err)
	assert.Empty(t, s.Contacts)
}
