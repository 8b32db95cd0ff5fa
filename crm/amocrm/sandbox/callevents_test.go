package sandbox

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCallEvents: POST /api/v2/events as amoCRM documents it, with read-back; a wrong event
// is refused with 400 naming it, and nothing of the request is kept.
func TestCallEvents(t *testing.T) {
	sb, ts := start(t)
	postAuth := func(body string) answer {
		return call(t, context.Background(), http.MethodPost, ts.URL+"/api/v2/events", DefaultToken, body)
	}
	a := postAuth(`{"add":[{"type":"phone_call","phone_number":"+74951234567","users":[1001]},{"type":"phone_call","phone_number":"89990000000"}]}`)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	assert.EqualValues(t, 2001, dig(t, a.json(t), "_embedded", "items", 0, "element_id"), "the contact with the number")

	es := sb.CallEvents()
	require.Len(t, es, 2)
	assert.Equal(t, []int64{1001}, es[0].Users)
	assert.Equal(t, []int64{1001, 1002, 1003}, es[1].Users, "no users: everybody is notified")

	for name, body := range map[string]string{
		"wrong type":   `{"add":[{"type":"call","phone_number":"+74951234567","users":[1001]}]}`,
		"no number":    `{"add":[{"type":"phone_call","users":[1001]}]}`,
		"unknown user": `{"add":[{"type":"phone_call","phone_number":"+74951234567","users":[42]}]}`,
		"no events":    `{"add":[]}`,
		"not JSON":     `add=1`,
	} {
		t.Run(name, func(t *testing.T) {
			a := postAuth(body)
			assert.Equal(t, http.StatusBadRequest, a.status, string(a.body))
			assert.Len(t, sb.CallEvents(), 2)
		})
	}
	assert.Equal(t, http.StatusUnauthorized, call(t, context.Background(), http.MethodPost, ts.URL+"/api/v2/events", "", `{"add":[]}`).status)
	assert.Equal(t, http.StatusMethodNotAllowed, call(t, context.Background(), http.MethodGet, ts.URL+"/api/v2/events", DefaultToken, "").status)
}

// TestCallNoteCredit: a call note's created_by and responsible_user_id are kept as sent
// (an unknown user is refused) and CallsByManager counts calls by created_by.
func TestCallNoteCredit(t *testing.T) {
	sb, ts := start(t)
	note := func(createdBy string) answer {
		return call(t, context.Background(), http.MethodPost, ts.URL+"/api/v4/contacts/notes", DefaultToken,
			`[{"entity_id":2001,"note_type":"call_in","created_by":`+createdBy+`,"responsible_user_id":`+createdBy+
				`,"params":{"uniq":"u`+createdBy+`","duration":5,"source":"pbx","phone":"+74951234567","call_status":4}}]`)
	}
	require.Equal(t, http.StatusOK, note("1001").status)
	require.Equal(t, http.StatusOK, note("1002").status)
	require.Equal(t, http.StatusOK, note("0").status)
	assert.Equal(t, http.StatusBadRequest, note("42").status, "an unknown user")
	c := sb.Created()
	require.Len(t, c.Notes, 3)
	assert.Equal(t, int64(1001), c.Notes[0].CreatedBy)
	assert.Equal(t, int64(1001), c.Notes[0].ResponsibleUserID)
	want := map[int64]int{1001: 1, 1002: 1}
	want[sb.State().APIUserID]++ // without created_by: the integration's user
	assert.Equal(t, want, c.CallsByManager())
}
