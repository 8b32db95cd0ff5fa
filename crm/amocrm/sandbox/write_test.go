package sandbox

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// api sends an authorised API request with a JSON body.
func api(t *testing.T, ts *httptest.Server, method, path, body string) answer {
	t.Helper()
	return call(t, context.Background(), method, ts.URL+path, DefaultToken, body)
}

func issues(t *testing.T, a answer) []string {
	t.Helper()
	require.Equal(t, http.StatusBadRequest, a.status, string(a.body))
	assert.Equal(t, "application/problem+json", a.ctype)
	m := a.json(t)
	assert.Equal(t, "Request validation failed", m["detail"])
	var out []string
	for _, ve := range m["validation-errors"].([]any) {
		ve := ve.(map[string]any)
		for _, e := range ve["errors"].([]any) {
			e := e.(map[string]any)
			out = append(out, fmt.Sprintf("%s %s %s", ve["request_id"], e["path"], e["code"]))
		}
	}
	return out
}

func TestPostContactsShapeAndSearch(t *testing.T) {
	sb, s := start(t)
	a := api(t, s, "POST", "/api/v4/contacts", `[
		{"name":"Новый Клиент","responsible_user_id":1002,"request_id":"c-1",
		 "custom_fields_values":[{"field_code":"PHONE","values":[{"value":"+79261112233","enum_code":"WORK"}]},
		                         {"field_code":"EMAIL","values":[{"value":"new@example.com","enum_code":"WORK"}]}]},
		{"first_name":"Без","last_name":"Телефона"}]`)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	assert.Equal(t, "application/hal+json", a.ctype)
	m := a.json(t)
	first := dig(t, m, "_embedded", "contacts", 0)
	id := int64(dig(t, first, "id").(float64))
	assert.Greater(t, id, int64(4003), "ids continue after the seed's")
	assert.Equal(t, "c-1", dig(t, first, "request_id"))
	assert.Equal(t, s.URL+fmt.Sprintf("/api/v4/contacts/%d", id), dig(t, first, "_links", "self", "href"))
	assert.Equal(t, "1", dig(t, m, "_embedded", "contacts", 1, "request_id"), "no request_id: the index")

	found := get2(t, s, "/api/v4/contacts?query=9261112233")
	assert.Equal(t, []int64{id}, idsOf(t, dig(t, found, "_embedded", "contacts")), "the next call from the number is a known client")
	assert.Equal(t, "EMAIL", dig(t, found, "_embedded", "contacts", 0, "custom_fields_values", 1, "field_code"))
	assert.Equal(t, []int64{id}, idsOf(t, dig(t, get2(t, s, "/api/v4/contacts?query=new@example"), "_embedded", "contacts")))

	c := sb.Created()
	require.Len(t, c.Contacts, 2)
	assert.Equal(t, Contact{ID: id, Name: "Новый Клиент", ResponsibleUserID: 1002, Phones: []string{"+79261112233"},
		Emails: []string{"new@example.com"}, CreatedAt: c.Contacts[0].CreatedAt, UpdatedAt: c.Contacts[0].UpdatedAt}, c.Contacts[0])
	assert.Equal(t, "Без Телефона", c.Contacts[1].Name)
	assert.EqualValues(t, 1001, c.Contacts[1].ResponsibleUserID, "the token's user by default")
}

func get2(t *testing.T, s *httptest.Server, path string) map[string]any {
	t.Helper()
	a := api(t, s, "GET", path, "")
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	return a.json(t)
}

func TestPostLeadsLinksContacts(t *testing.T) {
	sb, s := start(t)
	a := api(t, s, "POST", "/api/v4/leads", `[{"name":"Заявка","responsible_user_id":1002,"request_id":"l-1",
		"_embedded":{"contacts":[{"id":2003}],"tags":[{"name":"missed"},{"name":"crmlink"}]}},
		{"pipeline_id":7001,"status_id":7101}]`)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	ids := idsOf(t, dig(t, a.json(t), "_embedded", "leads"))
	require.Len(t, ids, 2)

	ct := get2(t, s, "/api/v4/contacts/2003?with=leads")
	assert.Equal(t, []int64{ids[0]}, idsOf(t, dig(t, ct, "_embedded", "leads")))
	l := get2(t, s, fmt.Sprintf("/api/v4/leads/%d?with=contacts", ids[0]))
	assert.Equal(t, []int64{2003}, idsOf(t, dig(t, l, "_embedded", "contacts")))
	assert.EqualValues(t, DefaultPipelineID, l["pipeline_id"])
	assert.EqualValues(t, DefaultStatusID, l["status_id"])
	assert.Equal(t, "missed", dig(t, l, "_embedded", "tags", 0, "name"))
	assert.NotZero(t, dig(t, l, "_embedded", "tags", 1, "id"))

	other := get2(t, s, fmt.Sprintf("/api/v4/leads/%d", ids[1]))
	assert.Equal(t, fmt.Sprintf("Сделка #%d", ids[1]), other["name"])
	assert.EqualValues(t, 7001, other["pipeline_id"])
	assert.EqualValues(t, 7101, other["status_id"])

	c := sb.Created()
	require.Len(t, c.Leads, 2)
	assert.Equal(t, []int64{2003}, c.Leads[0].ContactIDs)
	assert.Equal(t, []string{"missed", "crmlink"}, c.Leads[0].Tags)
	assert.Equal(t, []int64{ids[0]}, sb.State().Contacts[2].LeadIDs)
}

func TestWriteValidation(t *testing.T) {
	_, s := start(t)
	cases := []struct {
		name, path, body string
		want             []string
	}{
		{"empty array", "/api/v4/contacts", `[]`, []string{"0  NotBlank"}},
		{"not an object", "/api/v4/contacts", `[1]`, []string{"0  InvalidType"}},
		{"request_id not a string", "/api/v4/contacts", `[{"request_id":5}]`, []string{"0 request_id InvalidType"}},
		{"blank phone", "/api/v4/contacts", `[{"name":"a"},{"request_id":"x","custom_fields_values":[{"field_code":"PHONE","values":[{"value":" "}]}]}]`,
			[]string{"x custom_fields_values.0.values.0.value NotBlank"}},
		{"unknown field and enum", "/api/v4/contacts", `[{"custom_fields_values":[{"field_code":"SKYPE","values":[{"value":"a"}]},{"field_code":"PHONE","values":[{"value":"1","enum_code":"CELL"}]}]}]`,
			[]string{"0 custom_fields_values.0.field_code NotSupportedChoice", "0 custom_fields_values.1.values.0.enum_code NotSupportedChoice"}},
		{"unknown user", "/api/v4/contacts", `[{"name":"a","responsible_user_id":77}]`, []string{"0 responsible_user_id NotSupportedChoice"}},
		{"wrong type", "/api/v4/leads", `[{"name":"a","status_id":"won"}]`, []string{"0 status_id InvalidType"}},
		{"lead with unknown contact", "/api/v4/leads", `[{"_embedded":{"contacts":[{"id":2001},{"id":9}]}}]`,
			[]string{"0 _embedded.contacts.1.id NotFound"}},
		{"task without text and deadline", "/api/v4/tasks", `[{"entity_type":"leads","entity_id":4001}]`,
			[]string{"0 text NotBlank", "0 complete_till NotBlank"}},
		{"task on unknown entity", "/api/v4/tasks", `[{"text":"t","complete_till":1,"entity_type":"leads","entity_id":9},{"text":"t","complete_till":1,"entity_type":"deals","entity_id":1}]`,
			[]string{"0 entity_id NotFound", "1 entity_type NotSupportedChoice"}},
		{"note without entity", "/api/v4/leads/notes", `[{"note_type":"common","params":{"text":"x"}}]`, []string{"0 entity_id NotBlank"}},
		{"note of unknown type", "/api/v4/contacts/notes", `[{"entity_id":2001,"note_type":"sms"}]`, []string{"0 note_type NotSupportedChoice"}},
		{"call note without uniq", "/api/v4/leads/notes", `[{"entity_id":4001,"note_type":"call_in","params":{"phone":"+7","source":"s","duration":5,"call_status":9}}]`,
			[]string{"0 params.uniq NotBlank", "0 params.call_status NotSupportedChoice"}},
		{"unsorted without metadata and lead", "/api/v4/leads/unsorted/sip", `[{"source_name":"pbx","source_uid":"u1"}]`,
			[]string{"0 metadata NotBlank", "0 _embedded.leads NotBlank"}},
		{"unsorted twice in one request", "/api/v4/leads/unsorted/sip", unsortedBody("u1", "u1"), []string{"1 source_uid NotUnique"}},
		{"patch unknown id", "/api/v4/leads", `[{"id":9,"responsible_user_id":1001}]`, []string{"0 id NotFound"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := "POST"
			if strings.HasPrefix(c.name, "patch") {
				method = "PATCH"
			}
			assert.Equal(t, c.want, issues(t, api(t, s, method, c.path, c.body)))
		})
	}
	for _, body := range []string{`{"name":"not an array"}`, `nope`, ``} {
		a := api(t, s, "POST", "/api/v4/contacts", body)
		assert.Equal(t, http.StatusBadRequest, a.status, body)
		assert.Equal(t, "application/problem+json", a.ctype)
	}
	many := "[" + strings.Repeat(`{"name":"x"},`, 250) + `{"name":"x"}]`
	assert.Equal(t, []string{"0  TooMany"}, issues(t, api(t, s, "POST", "/api/v4/contacts", many)))
}

func TestRejectedWriteCreatesNothing(t *testing.T) {
	sb, s := start(t)
	a := api(t, s, "POST", "/api/v4/contacts", `[{"name":"ok"},{"name":"bad","responsible_user_id":99}]`)
	require.Equal(t, http.StatusBadRequest, a.status)
	assert.Empty(t, sb.Created().Contacts, "a 400 rejects the whole request")
}

func TestTasks(t *testing.T) {
	sb, s := start(t)
	a := api(t, s, "POST", "/api/v4/tasks", `[
		{"text":"Перезвонить","complete_till":1700003600,"task_type_id":1,"responsible_user_id":1002,"entity_type":"leads","entity_id":4002,"request_id":"t1"},
		{"text":"Встреча","complete_till":1700007200,"task_type_id":2,"entity_type":"contacts","entity_id":2001},
		{"text":"Без сущности","complete_till":1700009000}]`)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	m := a.json(t)
	ids := idsOf(t, dig(t, m, "_embedded", "tasks"))
	require.Len(t, ids, 3)
	assert.Equal(t, "t1", dig(t, m, "_embedded", "tasks", 0, "request_id"))

	got := get2(t, s, "/api/v4/tasks?filter[entity_type]=leads&filter[entity_id][]=4002&filter[is_completed]=0")
	assert.Equal(t, []int64{ids[0]}, idsOf(t, dig(t, got, "_embedded", "tasks")))
	task := dig(t, got, "_embedded", "tasks", 0)
	assert.EqualValues(t, 1700003600, dig(t, task, "complete_till"))
	assert.EqualValues(t, 1002, dig(t, task, "responsible_user_id"))
	assert.Equal(t, "leads", dig(t, task, "entity_type"))
	assert.Equal(t, false, dig(t, task, "is_completed"))
	assert.Equal(t, []any{}, dig(t, task, "result"))

	none := get2(t, s, fmt.Sprintf("/api/v4/tasks/%d", ids[2]))
	assert.Nil(t, none["entity_type"])
	assert.Nil(t, none["entity_id"])
	assert.EqualValues(t, 1001, none["responsible_user_id"], "the token's user by default")
	assert.Equal(t, []int64{ids[1]}, idsOf(t, dig(t, get2(t, s, "/api/v4/tasks?filter[task_type][]=2"), "_embedded", "tasks")))
	assert.Equal(t, []int64{ids[0]}, idsOf(t, dig(t, get2(t, s, "/api/v4/tasks?filter[responsible_user_id]=1002"), "_embedded", "tasks")))

	a = api(t, s, "PATCH", "/api/v4/tasks", fmt.Sprintf(`[{"id":%d,"is_completed":true,"result":{"text":"Дозвонились"}}]`, ids[0]))
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	assert.Equal(t, http.StatusNoContent, api(t, s, "GET", "/api/v4/tasks?filter[entity_type]=leads&filter[entity_id][]=4002&filter[is_completed]=0", "").status)
	done := get2(t, s, "/api/v4/tasks?filter[is_completed]=1")
	assert.Equal(t, "Дозвонились", dig(t, done, "_embedded", "tasks", 0, "result", "text"))

	require.NoError(t, sb.CompleteTask(ids[1], "Провели"))
	assert.ErrorIs(t, sb.CompleteTask(1, ""), ErrNotFound)
	c := sb.Created()
	require.Len(t, c.Tasks, 3)
	assert.Equal(t, Task{ID: ids[1], Text: "Встреча", TaskTypeID: 2, ResponsibleUserID: 1001, EntityType: "contacts", EntityID: 2001,
		CompleteTill: 1700007200, IsCompleted: true, Result: "Провели", RequestID: "1", CreatedBy: 1001,
		CreatedAt: c.Tasks[1].CreatedAt, UpdatedAt: c.Tasks[1].UpdatedAt}, c.Tasks[1])
	assert.Len(t, c.TasksOn("leads", 4002), 1)

	for _, q := range []string{"filter[is_completed]=2", "filter[entity_id][]=x", "filter[entity_type]=deals"} {
		assert.Equal(t, http.StatusBadRequest, api(t, s, "GET", "/api/v4/tasks?"+q, "").status, q)
	}
	assert.Equal(t, http.StatusNotFound, api(t, s, "GET", "/api/v4/tasks/1", "").status)
}

func TestNotesKeepDuplicates(t *testing.T) {
	sb, s := start(t)
	note := `{"entity_id":4002,"note_type":"call_in","params":{"uniq":"linked-1","duration":62,"source":"crmlink","link":"https://rec/1.mp3","phone":"+74951234567","call_status":4,"call_result":"Поговорили","call_responsible":1002}}`
	a := api(t, s, "POST", "/api/v4/leads/notes", "["+note+"]")
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	created := dig(t, a.json(t), "_embedded", "notes", 0)
	assert.EqualValues(t, 4002, dig(t, created, "entity_id"))
	id := int64(dig(t, created, "id").(float64))
	assert.Equal(t, s.URL+fmt.Sprintf("/api/v4/leads/4002/notes/%d", id), dig(t, created, "_links", "self", "href"))

	require.Equal(t, http.StatusOK, api(t, s, "POST", "/api/v4/leads/notes", "["+note+"]").status, "a repeated uniq is stored again")
	a = api(t, s, "POST", "/api/v4/contacts/2001/notes", `[{"note_type":"common","params":{"text":"Клиент просил перезвонить"}}]`)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	assert.EqualValues(t, 2001, dig(t, a.json(t), "_embedded", "notes", 0, "entity_id"), "entity from the path")

	c := sb.Created()
	require.Len(t, c.Notes, 3)
	onLead := c.NotesOn("leads", 4002)
	require.Len(t, onLead, 2)
	assert.Equal(t, onLead[0].Params, onLead[1].Params)
	assert.Equal(t, NoteParams{Uniq: "linked-1", Duration: 62, Source: "crmlink", Link: "https://rec/1.mp3", Phone: "+74951234567",
		CallStatus: 4, CallResult: "Поговорили", CallResponsible: "1002"}, onLead[0].Params)
	assert.Equal(t, "call_in", onLead[0].NoteType)
	assert.Equal(t, "Клиент просил перезвонить", c.NotesOn("contacts", 2001)[0].Params.Text)

	list := get2(t, s, "/api/v4/leads/notes?filter[entity_id][]=4002&filter[note_type][]=call_in")
	assert.Len(t, dig(t, list, "_embedded", "notes"), 2)
	assert.EqualValues(t, 1002, dig(t, list, "_embedded", "notes", 0, "params", "call_responsible"))
	assert.EqualValues(t, 62, dig(t, list, "_embedded", "notes", 0, "params", "duration"))
	assert.Len(t, dig(t, get2(t, s, "/api/v4/contacts/2001/notes"), "_embedded", "notes"), 1)
	assert.Equal(t, http.StatusNoContent, api(t, s, "GET", "/api/v4/companies/notes", "").status)
}

func unsortedBody(uids ...string) string {
	var items []string
	for _, uid := range uids {
		items = append(items, fmt.Sprintf(`{"source_name":"crmlink","source_uid":%q,"created_at":1700000000,
			"metadata":{"phone":"+79035550101","called_at":1700000000,"duration":0,"service_code":"crmlink","uniq":%q,"is_call_event_needed":true,"call_responsible":1002},
			"_embedded":{"leads":[{"name":"Пропущенный звонок"}],"contacts":[{"name":"Новый абонент","custom_fields_values":[{"field_code":"PHONE","values":[{"value":"+79035550101","enum_code":"WORK"}]}]}]}}`, uid, uid))
	}
	return "[" + strings.Join(items, ",") + "]"
}

func TestUnsortedAddListAcceptWebhook(t *testing.T) {
	sb, s := start(t)
	rs, got := receiver(t, http.StatusOK)
	require.NoError(t, sb.SetWebhookURL(rs.URL))

	assert.Equal(t, http.StatusNoContent, api(t, s, "GET", "/api/v4/leads/unsorted?filter[category][]=sip", "").status, "nothing waits")
	a := api(t, s, "POST", "/api/v4/leads/unsorted/sip", unsortedBody("call-1"))
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	m := a.json(t)
	assert.EqualValues(t, 1, m["_total_items"])
	entry := dig(t, m, "_embedded", "unsorted", 0)
	uid := dig(t, entry, "uid").(string)
	assert.Len(t, uid, 40)
	assert.EqualValues(t, DefaultAccountID, dig(t, entry, "account_id"))
	assert.Equal(t, "0", dig(t, entry, "request_id"))
	leadID := idsOf(t, dig(t, entry, "_embedded", "leads"))[0]
	contactID := idsOf(t, dig(t, entry, "_embedded", "contacts"))[0]

	assert.Equal(t, []string{"0 source_uid NotUnique"}, issues(t, api(t, s, "POST", "/api/v4/leads/unsorted/sip", unsortedBody("call-1"))),
		"the same item cannot be in Unsorted twice")
	assert.Equal(t, http.StatusNoContent, api(t, s, "GET", "/api/v4/contacts?query=9035550101", "").status, "hidden until accepted")
	assert.Equal(t, http.StatusNotFound, api(t, s, "GET", fmt.Sprintf("/api/v4/leads/%d", leadID), "").status)

	list := get2(t, s, "/api/v4/leads/unsorted?filter[category][]=sip&filter[pipeline_id]=5001")
	e := dig(t, list, "_embedded", "unsorted", 0)
	assert.Equal(t, uid, dig(t, e, "uid"))
	assert.Equal(t, "call-1", dig(t, e, "source_uid"))
	assert.Equal(t, "sip", dig(t, e, "category"))
	assert.Equal(t, "+79035550101", dig(t, e, "metadata", "phone"))
	assert.Equal(t, true, dig(t, e, "metadata", "is_call_event_needed"))
	assert.EqualValues(t, 1002, dig(t, e, "metadata", "call_responsible"))
	assert.Equal(t, uid, get2(t, s, "/api/v4/leads/unsorted/"+uid)["uid"])
	assert.Equal(t, http.StatusNoContent, api(t, s, "GET", "/api/v4/leads/unsorted?filter[uid]=other", "").status)
	assert.Equal(t, http.StatusNoContent, api(t, s, "GET", "/api/v4/leads/unsorted?filter[category][]=forms", "").status)

	a = api(t, s, "POST", "/api/v4/leads/unsorted/"+uid+"/accept", `{"user_id":1002,"status_id":5101}`)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	assert.Equal(t, []int64{leadID}, idsOf(t, dig(t, a.json(t), "_embedded", "leads")))
	assert.Equal(t, []int64{contactID}, idsOf(t, dig(t, a.json(t), "_embedded", "contacts")))

	form := <-got
	for key, want := range map[string]string{
		"unsorted[delete][0][action]":                     "accept",
		"unsorted[delete][0][uid]":                        uid,
		"unsorted[delete][0][category]":                   "sip",
		"unsorted[delete][0][modified_user_id]":           "1002",
		"unsorted[delete][0][accept_result][leads][0]":    fmt.Sprint(leadID),
		"unsorted[delete][0][accept_result][contacts][0]": fmt.Sprint(contactID),
		"account[id]":        fmt.Sprint(DefaultAccountID),
		"account[subdomain]": DefaultSubdomain,
	} {
		assert.Equal(t, want, form.Get(key), key)
	}

	found := get2(t, s, "/api/v4/contacts?query=9035550101&with=leads")
	assert.Equal(t, []int64{contactID}, idsOf(t, dig(t, found, "_embedded", "contacts")), "a known client now")
	assert.Equal(t, []int64{leadID}, idsOf(t, dig(t, found, "_embedded", "contacts", 0, "_embedded", "leads")))
	assert.EqualValues(t, 1002, dig(t, found, "_embedded", "contacts", 0, "responsible_user_id"))
	assert.Equal(t, http.StatusNoContent, api(t, s, "GET", "/api/v4/leads/unsorted", "").status, "accepted entries leave Unsorted")
	assert.Equal(t, http.StatusNotFound, api(t, s, "GET", "/api/v4/leads/unsorted/"+uid, "").status)
	assert.Equal(t, []string{"0 uid InvalidParameter"}, issues(t, api(t, s, "POST", "/api/v4/leads/unsorted/"+uid+"/accept", `{}`)))
	assert.Equal(t, http.StatusNotFound, api(t, s, "POST", "/api/v4/leads/unsorted/nope/accept", ``).status)

	c := sb.Created()
	require.Len(t, c.Unsorted, 1)
	u := c.Unsorted[0]
	assert.Equal(t, UnsortedAccepted, u.Status)
	assert.EqualValues(t, 1002, u.DecidedBy)
	assert.Equal(t, SipMetadata{Phone: "+79035550101", CalledAt: 1700000000, ServiceCode: "crmlink", Uniq: "call-1",
		IsCallEventNeeded: true, CallResponsible: "1002"}, u.Metadata)
	require.Len(t, c.Contacts, 1)
	assert.Equal(t, contactID, c.Contacts[0].ID)
	require.Len(t, c.Leads, 1)
	assert.Equal(t, "Пропущенный звонок", c.Leads[0].Name)
	assert.EqualValues(t, 1002, c.Leads[0].ResponsibleUserID)

	a = api(t, s, "POST", "/api/v4/leads/unsorted/sip", unsortedBody("call-1"))
	assert.Equal(t, http.StatusOK, a.status, "once decided, the item may come again")
}

func TestUnsortedDecline(t *testing.T) {
	sb, s := start(t)
	rs, got := receiver(t, http.StatusOK)
	require.NoError(t, sb.SetWebhookURL(rs.URL))
	a := api(t, s, "POST", "/api/v4/leads/unsorted/sip", unsortedBody("call-2"))
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	uid := dig(t, a.json(t), "_embedded", "unsorted", 0, "uid").(string)

	assert.Equal(t, http.StatusMethodNotAllowed, api(t, s, "POST", "/api/v4/leads/unsorted/"+uid+"/decline", "").status)
	a = api(t, s, "DELETE", "/api/v4/leads/unsorted/"+uid+"/decline", `{"user_id":1003}`)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	form := <-got
	assert.Equal(t, "decline", form.Get("unsorted[delete][0][action]"))
	assert.Equal(t, "1003", form.Get("unsorted[delete][0][modified_user_id]"))
	assert.NotEmpty(t, form.Get("unsorted[delete][0][decline_result][leads][0]"))

	c := sb.Created()
	assert.Equal(t, UnsortedDeclined, c.Unsorted[0].Status)
	assert.Empty(t, c.Contacts, "a declined entry's contact is gone")
	assert.Empty(t, c.Leads)
	assert.Equal(t, http.StatusNoContent, api(t, s, "GET", "/api/v4/contacts?query=9035550101", "").status)
}

func TestUnsortedControlAndGoAPI(t *testing.T) {
	sb, s := start(t)
	for _, uid := range []string{"a", "b"} {
		require.Equal(t, http.StatusOK, api(t, s, "POST", "/api/v4/leads/unsorted/sip", unsortedBody(uid)).status)
	}
	c := sb.Created()
	a := post(t, s, "/_sandbox/unsorted/"+c.Unsorted[0].UID+"/accept", `{"user_id":1001}`)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	assert.Equal(t, "accepted", a.json(t)["status"])
	assert.Nil(t, a.json(t)["webhook"])
	assert.Equal(t, http.StatusNotFound, post(t, s, "/_sandbox/unsorted/zzz/accept", ``).status)
	assert.Equal(t, http.StatusBadRequest, post(t, s, "/_sandbox/unsorted/"+c.Unsorted[1].UID+"/accept", `{"user_id":77}`).status)

	d, err := sb.DeclineUnsorted(context.Background(), c.Unsorted[1].UID, 0)
	require.NoError(t, err)
	assert.Equal(t, UnsortedDeclined, d.Status)
	assert.EqualValues(t, 1001, sb.Created().Unsorted[1].DecidedBy, "the token's user")
	_, err = sb.AcceptUnsorted(context.Background(), c.Unsorted[1].UID, 0, 0)
	assert.ErrorIs(t, err, ErrBadRequest)
	_, err = sb.AcceptUnsorted(context.Background(), "zzz", 0, 0)
	assert.ErrorIs(t, err, ErrNotFound)

	require.Equal(t, http.StatusOK, api(t, s, "POST", "/api/v4/tasks", `[{"text":"t","complete_till":1}]`).status)
	id := sb.Created().Tasks[0].ID
	assert.Equal(t, http.StatusOK, post(t, s, fmt.Sprintf("/_sandbox/tasks/%d/complete", id), `{"result":"ok"}`).status)
	assert.True(t, sb.Created().Tasks[0].IsCompleted)
	assert.Equal(t, http.StatusNotFound, post(t, s, "/_sandbox/tasks/1/complete", ``).status)
}

func TestPatchResponsibleSendsWebhook(t *testing.T) {
	sb, s := start(t)
	rs, got := receiver(t, http.StatusOK)
	require.NoError(t, sb.SetWebhookURL(rs.URL))

	a := api(t, s, "PATCH", "/api/v4/contacts", `[{"id":2002,"responsible_user_id":1001}]`)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	assert.EqualValues(t, 2002, dig(t, a.json(t), "_embedded", "contacts", 0, "id"))
	assert.NotZero(t, dig(t, a.json(t), "_embedded", "contacts", 0, "updated_at"))
	form := <-got
	assert.Equal(t, "2002", form.Get("contacts[update][0][id]"))
	assert.Equal(t, "1001", form.Get("contacts[update][0][responsible_user_id]"))
	assert.Equal(t, "1002", form.Get("contacts[update][0][old_responsible_user_id]"))
	assert.Equal(t, "1001", form.Get("contacts[update][0][modified_user_id]"), "the token's user made the change")
	assert.EqualValues(t, 1001, get2(t, s, "/api/v4/contacts/2002")["responsible_user_id"])

	a = api(t, s, "PATCH", "/api/v4/leads", `[{"id":4003,"responsible_user_id":1002,"status_id":142}]`)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	assert.EqualValues(t, 142, get2(t, s, "/api/v4/leads/4003")["status_id"])
	select {
	case f := <-got:
		t.Fatalf("no webhook for an unchanged responsible, got %v", f)
	default:
	}
	require.Equal(t, http.StatusOK, api(t, s, "PATCH", "/api/v4/companies", `[{"id":3001,"responsible_user_id":1001}]`).status)
	assert.Equal(t, "company", (<-got).Get("contacts[update][0][type]"))
	assert.Equal(t, []string{"0 responsible_user_id NotSupportedChoice"}, issues(t, api(t, s, "PATCH", "/api/v4/leads", `[{"id":4003,"responsible_user_id":5}]`)))
	assert.Equal(t, []string{"0 status_id NotSupportedChoice"}, issues(t, api(t, s, "PATCH", "/api/v4/contacts", `[{"id":2001,"status_id":5}]`)))
}

func TestWritesFaultsAndRateLimit(t *testing.T) {
	sb, s := start(t)
	sb.FailNext(1, http.StatusServiceUnavailable)
	assert.Equal(t, http.StatusServiceUnavailable, api(t, s, "POST", "/api/v4/contacts", `[{"name":"x"}]`).status)
	assert.Empty(t, sb.Created().Contacts)
	assert.Equal(t, 1, sb.Requests("POST /api/v4/contacts"))

	sb.SetRateLimit(1)
	assert.Equal(t, http.StatusOK, api(t, s, "POST", "/api/v4/contacts", `[{"name":"x"}]`).status)
	assert.Equal(t, http.StatusTooManyRequests, api(t, s, "POST", "/api/v4/tasks", `[{"text":"t","complete_till":1}]`).status)
	assert.Len(t, sb.Created().Contacts, 1)
	assert.Empty(t, sb.Created().Tasks)

	sb.SetRateLimit(-1)
	assert.Equal(t, http.StatusUnauthorized, call(t, context.Background(), "POST", s.URL+"/api/v4/contacts", "wrong", `[{"name":"x"}]`).status)
}

func TestCreatedOverHTTP(t *testing.T) {
	_, s := start(t)
	require.Equal(t, http.StatusOK, api(t, s, "POST", "/api/v4/leads/unsorted/sip", unsortedBody("u")).status)
	require.Equal(t, http.StatusOK, api(t, s, "POST", "/api/v4/tasks", `[{"text":"t","complete_till":1700000000,"entity_type":"leads","entity_id":4001}]`).status)
	require.Equal(t, http.StatusOK, api(t, s, "POST", "/api/v4/leads/notes", `[{"entity_id":4001,"note_type":"call_out","params":{"uniq":"q","duration":0,"source":"s","phone":"+7","call_status":6}}]`).status)
	m := call(t, context.Background(), "GET", s.URL+"/_sandbox/created", "", "").json(t)
	assert.Equal(t, "pending", dig(t, m, "unsorted", 0, "status"))
	assert.Equal(t, "Новый абонент", dig(t, m, "unsorted", 0, "contact", "name"))
	assert.Equal(t, []any{"+79035550101"}, dig(t, m, "unsorted", 0, "contact", "phones"))
	assert.EqualValues(t, 1700000000, dig(t, m, "tasks", 0, "complete_till"))
	assert.Equal(t, "leads", dig(t, m, "tasks", 0, "entity_type"))
	assert.Equal(t, "call_out", dig(t, m, "notes", 0, "note_type"))
	assert.Equal(t, "q", dig(t, m, "notes", 0, "params", "uniq"))
	assert.EqualValues(t, 6, dig(t, m, "notes", 0, "params", "call_status"))
	assert.Equal(t, []any{}, m["contacts"])
}

func TestConcurrentWrites(t *testing.T) {
	sb, s := start(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				body := fmt.Sprintf(`[{"name":"c%d-%d","custom_fields_values":[{"field_code":"PHONE","values":[{"value":"+7916%07d"}]}]}]`, i, j, i*10+j)
				assert.Equal(t, http.StatusOK, api(t, s, "POST", "/api/v4/contacts", body).status)
				api(t, s, "GET", "/api/v4/contacts?query=916", "")
			}
		}()
	}
	wg.Wait()
	c := sb.Created()
	assert.Len(t, c.Contacts, 40)
	seen := map[int64]bool{}
	for _, ct := range c.Contacts {
		assert.False(t, seen[ct.ID], "ids are unique")
		seen[ct.ID] = true
	}
}

func TestMethodsAndPaths(t *testing.T) {
	_, s := start(t)
	cases := []struct {
		method, path string
		want         int
	}{
		{"POST", "/api/v4/companies", 405},
		{"POST", "/api/v4/users", 405},
		{"DELETE", "/api/v4/tasks", 405},
		{"POST", "/api/v4/leads/unsorted/chats", 404},
		{"GET", "/api/v4/users/1001/notes", 404},
		{"GET", "/api/v4/leads/unsorted/a/b/c", 404},
		{"GET", "/api/v4/leads/x/notes", 404},
		{"PUT", "/api/v4/leads/unsorted/abc/accept", 405},
	}
	for _, c := range cases {
		a := api(t, s, c.method, c.path, "")
		assert.Equal(t, c.want, a.status, c.method+" "+c.path)
		assert.Equal(t, "application/problem+json", a.ctype)
	}
	a := api(t, s, "POST", "/api/v4/companies", "")
	assert.Equal(t, "GET, PATCH", a.json(t)["detail"].(string)[len("/api/v4/companies answers "):])
}

// TestRequestIDIsNoIdempotencyKey: as in amoCRM's public API, request_id is only echoed back
// to match a batch's answers: the same request sent twice creates everything twice, so a
// client must not lean on it to keep a retry from writing twice.
func TestRequestIDIsNoIdempotencyKey(t *testing.T) {
	for _, tc := range []struct{ path, key, body string }{
		{"/api/v4/contacts", "contacts", `[{"name":"Twice","request_id":"chat-1"}]`},
		{"/api/v4/leads", "leads", `[{"name":"Twice","request_id":"chat-1"}]`},
		{"/api/v4/tasks", "tasks", `[{"text":"Call back","complete_till":1893456000,"entity_type":"contacts","entity_id":2001,"request_id":"call-1"}]`},
		{"/api/v4/contacts/notes", "notes", `[{"entity_id":2001,"note_type":"common","params":{"text":"twice"},"request_id":"call-1"}]`},
	} {
		t.Run(tc.key, func(t *testing.T) {
			_, s := start(t)
			var ids []int64
			for range 2 {
				a := api(t, s, "POST", tc.path, tc.body)
				require.Equal(t, http.StatusOK, a.status, string(a.body))
				item := dig(t, a.json(t), "_embedded", tc.key, 0)
				assert.NotEqual(t, "0", dig(t, item, "request_id"), "echoed")
				ids = append(ids, int64(dig(t, item, "id").(float64)))
			}
			assert.NotEqual(t, ids[0], ids[1], "the same request_id twice: two %s", tc.key)
		})
	}
}
