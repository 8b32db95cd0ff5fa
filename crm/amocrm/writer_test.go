package amocrm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
)

func TestCreateContactsAndFindThem(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	ctx := context.Background()
	ids, err := c.CreateContacts(ctx, []crm.NewContact{
		{Name: "Новый Клиент", Phones: []crm.Phone{"+79261112233", "+74957770011"}, Emails: []string{"new@example.com"}, Responsible: 1002, RequestID: "out-1"},
		{Name: "Второй", Phones: []crm.Phone{"+79260000002"}},
	})
	require.NoError(t, err)
	require.Len(t, ids, 2)

	created := sb.Created().Contacts
	require.Len(t, created, 2)
	assert.Equal(t, ids[0], created[0].ID)
	assert.Equal(t, "Новый Клиент", created[0].Name)
	assert.Equal(t, []string{"+79261112233", "+74957770011"}, created[0].Phones)
	assert.Equal(t, []string{"new@example.com"}, created[0].Emails)
	assert.EqualValues(t, 1002, created[0].ResponsibleUserID)
	assert.Equal(t, ids[1], created[1].ID)
	assert.Empty(t, sb.Created().Leads, "exactly what was asked")

	found, err := c.FindContactsByPhone(ctx, "+74957770011")
	require.NoError(t, err)
	require.Len(t, found, 1, "the next call from the number is a known client")
	assert.Equal(t, ids[0], found[0].ID)
	assert.Equal(t, crm.UserID(1002), found[0].Responsible)
}

func TestCreateLeadsLinkedToContact(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	ctx := context.Background()
	ids, err := c.CreateLeads(ctx, []crm.NewLead{
		{Name: "Пропущенный звонок", Responsible: 1002, ContactIDs: []int64{2003}, Tags: []string{"crmlink", "missed"}, RequestID: "lead-1"},
		{Name: "Вторая", PipelineID: 7001, StatusID: 7101},
	})
	require.NoError(t, err)
	require.Len(t, ids, 2)

	ct, err := c.Contact(ctx, 2003)
	require.NoError(t, err)
	assert.Equal(t, []int64{ids[0]}, ct.LeadIDs)
	leads, err := c.Leads(ctx, ct.LeadIDs)
	require.NoError(t, err)
	require.Len(t, leads, 1)
	assert.True(t, leads[0].Open())
	assert.Equal(t, crm.UserID(1002), leads[0].Responsible)
	assert.Equal(t, int64(sandbox.DefaultPipelineID), leads[0].PipelineID, "0: the main pipeline")

	created := sb.Created().Leads
	require.Len(t, created, 2)
	assert.Equal(t, []string{"crmlink", "missed"}, created[0].Tags)
	assert.Equal(t, []int64{2003}, created[0].ContactIDs)
	assert.Equal(t, sandbox.Lead{ID: ids[1], Name: "Вторая", StatusID: 7101, PipelineID: 7001, ResponsibleUserID: 1001,
		CreatedAt: created[1].CreatedAt, UpdatedAt: created[1].UpdatedAt}, created[1])
}

func TestCreateInBatchesOf50KeepsOrder(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	in := make([]crm.NewContact, 120)
	for i := range in {
		in[i] = crm.NewContact{Name: fmt.Sprintf("c%03d", i), Phones: []crm.Phone{crm.Phone(fmt.Sprintf("+7916%07d", i))}}
		if i%3 == 0 {
			in[i].RequestID = fmt.Sprintf("req-%d", i)
		}
	}
	ids, err := c.CreateContacts(context.Background(), in)
	require.NoError(t, err)
	assert.Equal(t, 3, sb.Requests("POST /api/v4/contacts"), "50 + 50 + 20")
	require.Len(t, ids, 120)
	byID := map[int64]string{}
	for _, ct := range sb.Created().Contacts {
		byID[ct.ID] = ct.Name
	}
	for i, id := range ids {
		assert.Equal(t, fmt.Sprintf("c%03d", i), byID[id], "result %d", i)
	}

	tasks := make([]crm.NewTask, 120)
	for i := range tasks {
		tasks[i] = crm.NewTask{Text: "t", CompleteTill: time.Unix(1700000000, 0), Entity: crm.EntityLead, EntityID: 4002}
	}
	tids, err := c.CreateTasks(context.Background(), tasks)
	require.NoError(t, err)
	assert.Len(t, tids, 120)
	assert.Equal(t, 3, sb.Requests("POST /api/v4/tasks"))
}

func TestMatchCreated(t *testing.T) {
	ref := func(id int64, rid string) createdRef { return createdRef{ID: id, RequestID: json.RawMessage(rid)} }
	got, err := matchCreated([]createdRef{ref(11, `"b"`), ref(10, `"a"`), ref(12, `"2"`)}, []string{"a", "b", ""})
	require.NoError(t, err)
	assert.Equal(t, []int64{10, 11, 12}, got, "by request_id, the index for an item without one")

	got, err = matchCreated([]createdRef{ref(10, `"x"`), ref(11, `"y"`)}, []string{"a", "b"})
	require.NoError(t, err)
	assert.Equal(t, []int64{10, 11}, got, "unknown request_ids: by position")

	got, err = matchCreated([]createdRef{ref(11, `1`), ref(10, `0`)}, []string{"", ""})
	require.NoError(t, err)
	assert.Equal(t, []int64{10, 11}, got, "numeric request_ids")

	got, err = matchCreated([]createdRef{ref(10, `"1"`), ref(11, `"1"`)}, []string{"", "1"})
	require.NoError(t, err)
	assert.Equal(t, []int64{10, 11}, got, "ambiguous ids sent: by position")

	_, err = matchCreated([]createdRef{ref(10, `"0"`)}, []string{"", ""})
	assert.ErrorContains(t, err, "sent 2 entities, the answer lists 1")
}

func TestTasksAndOpenTasks(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	ctx := context.Background()
	till := time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)
	ids, err := c.CreateTasks(ctx, []crm.NewTask{
		{Text: "Перезвонить клиенту", TypeID: crm.TaskTypeCall, Responsible: 1002, Entity: crm.EntityLead, EntityID: 4002, CompleteTill: till, RequestID: "cb-1"},
		{Text: "Перезвонить", Entity: crm.EntityContact, EntityID: 2002, CompleteTill: till.Add(time.Hour)},
	})
	require.NoError(t, err)
	require.Len(t, ids, 2)

	tasks := sb.Created().Tasks
	require.Len(t, tasks, 2)
	assert.Equal(t, sandbox.Task{ID: ids[0], Text: "Перезвонить клиенту", TaskTypeID: 1, ResponsibleUserID: 1002, EntityType: "leads",
		EntityID: 4002, CompleteTill: till.Unix(), RequestID: "cb-1", CreatedBy: 1001, CreatedAt: tasks[0].CreatedAt, UpdatedAt: tasks[0].UpdatedAt}, tasks[0])
	assert.Equal(t, "contacts", tasks[1].EntityType)

	open, err := c.OpenTasks(ctx, crm.EntityLead, 4002)
	require.NoError(t, err)
	assert.Equal(t, []crm.Task{{ID: ids[0], Text: "Перезвонить клиенту", TypeID: 1, Responsible: 1002, Entity: crm.EntityLead,
		EntityID: 4002, CompleteTill: till}}, open)

	require.NoError(t, sb.CompleteTask(ids[0], "Дозвонились"))
	open, err = c.OpenTasks(ctx, crm.EntityLead, 4002)
	require.NoError(t, err)
	assert.Empty(t, open, "204: no open task")
	open, err = c.OpenTasks(ctx, crm.EntityContact, 2002)
	require.NoError(t, err)
	assert.Len(t, open, 1)

	_, err = c.OpenTasks(ctx, "deal", 1)
	assert.ErrorContains(t, err, `unknown entity type "deal"`)
}

func TestCallNotes(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	ctx := context.Background()
	notes := []crm.CallNote{
		{Entity: crm.EntityLead, EntityID: 4002, Direction: crm.CallIn, Uniq: "1700000000.42", Phone: "+74951234567",
			Duration: 61500 * time.Millisecond, Status: crm.CallStatusAnswered, Result: "Разговор", Link: "https://rec.example/42.mp3", Responsible: 1002},
		{Entity: crm.EntityContact, EntityID: 2002, Direction: crm.CallOut, Uniq: "1700000000.43", Phone: "+74957654321",
			Status: crm.CallStatusNotReached, Result: "Не дозвонились", Source: "office-pbx"},
		{Entity: crm.EntityLead, EntityID: 4003, Direction: crm.CallIn, Uniq: "1700000000.44", Phone: "+74957654321", Status: crm.CallStatusBusy},
	}
	require.NoError(t, c.AddCallNotes(ctx, notes))
	assert.Equal(t, 1, sb.Requests("POST /api/v4/leads/notes"), "both lead notes in one request")
	assert.Equal(t, 1, sb.Requests("POST /api/v4/contacts/notes"))

	got := sb.Created()
	onLead := got.NotesOn("leads", 4002)
	require.Len(t, onLead, 1)
	assert.Equal(t, "call_in", onLead[0].NoteType)
	assert.Equal(t, sandbox.NoteParams{Uniq: "1700000000.42", Duration: 62, Source: "crmlink", Link: "https://rec.example/42.mp3",
		Phone: "+74951234567", CallStatus: 4, CallResult: "Разговор", CallResponsible: "1002"}, onLead[0].Params)
	onContact := got.NotesOn("contacts", 2002)
	require.Len(t, onContact, 1)
	assert.Equal(t, "call_out", onContact[0].NoteType)
	assert.Equal(t, 6, onContact[0].Params.CallStatus)
	assert.Equal(t, "office-pbx", onContact[0].Params.Source)
	assert.Zero(t, onContact[0].Params.Duration)
	assert.Len(t, got.NotesOn("leads", 4003), 1)

	// The writer does not dedupe: a repeated uniq is a second note, which the sandbox shows.
	require.NoError(t, c.AddCallNotes(ctx, notes[:1]))
	assert.Len(t, sb.Created().NotesOn("leads", 4002), 2)

	err := c.AddCallNotes(ctx, []crm.CallNote{{Entity: crm.EntityLead, EntityID: 4002, Direction: "sideways", Uniq: "u", Phone: "+7"}})
	assert.ErrorContains(t, err, `unknown call direction "sideways"`)
	require.NoError(t, c.AddCallNotes(ctx, nil))
	assert.Equal(t, 2, sb.Requests("POST /api/v4/leads/notes"), "no notes, no request")
}

func TestTextNote(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	require.NoError(t, c.AddTextNote(context.Background(), crm.EntityCompany, 3001, "Клиент просил счёт"))
	n := sb.Created().NotesOn("companies", 3001)
	require.Len(t, n, 1)
	assert.Equal(t, "common", n[0].NoteType)
	assert.Equal(t, "Клиент просил счёт", n[0].Params.Text)

	err := c.AddTextNote(context.Background(), crm.EntityLead, 9999, "x")
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "entity_id", ve.Items[0].Issues[0].Path)
}

func TestSetResponsible(t *testing.T) {
	sb, url := startSandbox(t)
	hooks := make(chan string, 4)
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.NoError(t, r.ParseForm())
		hooks <- r.PostForm.Get("contacts[update][0][modified_user_id]")
	}))
	t.Cleanup(rs.Close)
	require.NoError(t, sb.SetWebhookURL(rs.URL))
	c := newClient(t, url, nil)
	ctx := context.Background()

	require.NoError(t, c.SetResponsible(ctx, crm.EntityContact, 2002, 1001))
	ct, err := c.Contact(ctx, 2002)
	require.NoError(t, err)
	assert.Equal(t, crm.UserID(1001), ct.Responsible)
	assert.Equal(t, "1001", <-hooks, "amoCRM reports the write as the token's user's change")
	require.NoError(t, c.SetResponsible(ctx, crm.EntityLead, 4003, 1001))
	leads, err := c.Leads(ctx, []int64{4003})
	require.NoError(t, err)
	assert.Equal(t, crm.UserID(1001), leads[0].Responsible)

	err = c.SetResponsible(ctx, crm.EntityLead, 9999, 1001)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.True(t, strings.HasPrefix(err.Error(), "amocrm PATCH /api/v4/leads: status 400"), err.Error())
	assert.ErrorContains(t, c.SetResponsible(ctx, crm.EntityLead, 4003, 0), "no responsible user")
	assert.ErrorContains(t, c.SetResponsible(ctx, "deal", 1, 1), "unknown entity type")
	assert.Equal(t, 2, sb.Requests("PATCH /api/v4/leads"), "bad input sends nothing")
}

func TestUnsortedCalls(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	ctx := context.Background()
	call := crm.UnsortedCall{
		UID: "1700000000.77", SourceName: "Входящая линия", Phone: "+79035550101", CalledAt: time.Unix(1700000000, 0),
		Duration: 35 * time.Second, Link: "https://rec.example/77.mp3", Responsible: 1002, ContactName: "Новый абонент", LeadName: "Звонок с +79035550101",
	}
	require.NoError(t, c.AddUnsortedCalls(ctx, []crm.UnsortedCall{call}))
	got := sb.Created().Unsorted
	require.Len(t, got, 1)
	u := got[0]
	assert.Equal(t, sandbox.UnsortedPending, u.Status)
	assert.Equal(t, "1700000000.77", u.SourceUID)
	assert.Equal(t, "Входящая линия", u.SourceName)
	assert.Equal(t, int64(sandbox.DefaultPipelineID), u.PipelineID)
	assert.Equal(t, sandbox.SipMetadata{Phone: "+79035550101", CalledAt: 1700000000, Duration: 35, Link: "https://rec.example/77.mp3",
		ServiceCode: "crmlink", Uniq: "1700000000.77", IsCallEventNeeded: true, CallResponsible: "1002"}, u.Metadata)
	require.NotNil(t, u.Contact)
	assert.Equal(t, []string{"+79035550101"}, u.Contact.Phones)
	assert.Equal(t, "Новый абонент", u.Contact.Name)
	assert.Equal(t, "Звонок с +79035550101", u.Lead.Name)
	assert.Empty(t, sb.Created().Contacts, "nothing but the entry until it is accepted")

	pending, err := c.PendingUnsorted(ctx, "+79035550101")
	require.NoError(t, err)
	assert.Equal(t, u.UID, pending, "the waiting entry's amoCRM uid")
	pending, err = c.PendingUnsorted(ctx, "+79035550102")
	require.NoError(t, err)
	assert.Empty(t, pending)
	found, err := c.FindContactsByPhone(ctx, "+79035550101")
	require.NoError(t, err)
	assert.Empty(t, found, "still unknown while pending")

	// A retried event: amoCRM refuses the item already in Unsorted; the writer skips it.
	second := call
	second.UID = "1700000100.78"
	require.NoError(t, c.AddUnsortedCalls(ctx, []crm.UnsortedCall{call, second, call}))
	assert.Equal(t, 3, sb.Requests("POST /api/v4/leads/unsorted/sip"), "one refused, then the new entry alone")
	got = sb.Created().Unsorted
	require.Len(t, got, 2, "created once")
	assert.Equal(t, "1700000100.78", got[1].SourceUID)
	require.NoError(t, c.AddUnsortedCalls(ctx, []crm.UnsortedCall{call}))
	assert.Len(t, sb.Created().Unsorted, 2)

	// A manager accepts: the caller becomes a known client with a lead.
	_, err = sb.AcceptUnsorted(ctx, got[0].UID, 1002, 0)
	require.NoError(t, err)
	_, err = sb.DeclineUnsorted(ctx, got[1].UID, 1002)
	require.NoError(t, err)
	pending, err = c.PendingUnsorted(ctx, "+79035550101")
	require.NoError(t, err)
	assert.Empty(t, pending, "204 when nothing waits")
	found, err = c.FindContactsByPhone(ctx, "+79035550101")
	require.NoError(t, err)
	require.Len(t, found, 1)
	assert.Equal(t, crm.UserID(1002), found[0].Responsible)
	assert.Equal(t, []int64{got[0].Lead.ID}, found[0].LeadIDs)

	assert.ErrorContains(t, c.AddUnsortedCalls(ctx, []crm.UnsortedCall{{Phone: "+7"}}), "no UID")
	require.NoError(t, c.AddUnsortedCalls(ctx, nil))
}

func TestUnsortedOtherRejectionIsAnError(t *testing.T) {
	_, url := startSandbox(t)
	c := newClient(t, url, nil)
	err := c.AddUnsortedCalls(context.Background(), []crm.UnsortedCall{{UID: "u1", Phone: "+79035550101", Responsible: 77}})
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "u1", ve.Items[0].RequestID, "items are named by their UID")
	assert.Contains(t, err.Error(), "responsible_user_id")
}

func TestValidationErrorMapping(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	_, err := c.CreateTasks(context.Background(), []crm.NewTask{{Entity: crm.EntityLead, EntityID: 4002}})
	require.Error(t, err)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, http.StatusBadRequest, ve.Status)
	assert.Equal(t, []ValidationItem{{RequestID: "0", Issues: []ValidationIssue{
		{Code: "NotBlank", Path: "text", Detail: "This value should not be blank."},
		{Code: "NotBlank", Path: "complete_till", Detail: "This value should not be blank."},
	}}}, ve.Items)
	assert.Equal(t, "amocrm POST /api/v4/tasks: status 400: Bad Request: Request validation failed: "+
		"item 0: text: This value should not be blank. (NotBlank); item 0: complete_till: This value should not be blank. (NotBlank)", err.Error())
	for _, e := range []error{crm.ErrNotFound, crm.ErrUnavailable, crm.ErrRateLimited} {
		assert.NotErrorIs(t, err, e)
	}

	// A bad item in the second batch: the first 50 were created and their ids come back.
	in := make([]crm.NewContact, 60)
	for i := range in {
		in[i] = crm.NewContact{Name: fmt.Sprint(i)}
	}
	in[55].Responsible = 77
	ids, err := c.CreateContacts(context.Background(), in)
	require.ErrorAs(t, err, &ve)
	assert.Len(t, ids, 50)
	assert.Len(t, sb.Created().Contacts, 50)
	assert.Contains(t, err.Error(), "item 5: responsible_user_id")
	assert.Contains(t, err.Error(), "(items 51-60 of 60; the 50 before were written)")
}

func TestValidationErrorMessageIsBounded(t *testing.T) {
	e := &ValidationError{Status: 400, Title: "Bad Request"}
	for i := range 30 {
		e.Items = append(e.Items, ValidationItem{RequestID: fmt.Sprint(i), Issues: []ValidationIssue{{Path: "name", Detail: "bad"}}})
	}
	assert.True(t, strings.HasSuffix(e.Error(), "; and 20 more"), e.Error())
	assert.Equal(t, "status 400", (&ValidationError{Status: 400}).Error())
	assert.Equal(t, &ValidationError{Status: 400}, validationError(400, []byte("not json")))
}

func TestWriteStatusMapping(t *testing.T) {
	cases := []struct {
		status int
		want   error
		tries  int
	}{
		{401, crm.ErrUnauthorized, 1},
		{403, crm.ErrForbidden, 1},
		{404, crm.ErrNotFound, 1},
		{500, crm.ErrUnavailable, 1},
		{503, crm.ErrUnavailable, 1},
		{429, crm.ErrRateLimited, 2},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			sb, url := startSandbox(t)
			c := newClient(t, url, func(o *Options) { o.MaxRetries = 1 })
			sb.FailNext(5, tc.status)
			_, err := c.CreateContacts(context.Background(), []crm.NewContact{{Name: "x"}})
			require.ErrorIs(t, err, tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "amocrm POST /api/v4/contacts: "), err.Error())
			assert.Equal(t, tc.tries, sb.Requests("POST /api/v4/contacts"), "only a 429 is retried: a 5xx write may have happened")
			assert.Empty(t, sb.Created().Contacts)
		})
	}
	sb, url := startSandbox(t)
	sb.FailNext(2, http.StatusTooManyRequests)
	ids, err := newClient(t, url, nil).CreateContacts(context.Background(), []crm.NewContact{{Name: "x"}})
	require.NoError(t, err)
	assert.Len(t, ids, 1)
	assert.Len(t, sb.Created().Contacts, 1, "retried after 429, created once")

	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"_embedded":{"contacts":[]}}`)
	}))
	t.Cleanup(ts.Close)
	_, err = newClient(t, ts.URL, nil).CreateContacts(context.Background(), []crm.NewContact{{Name: "x"}})
	assert.ErrorContains(t, err, "sent 1 entities, the answer lists 0")
}

// requestLines returns the "amocrm request" log lines of a client.
func requestLines(logs *syncBuffer) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] == "amocrm request" {
			out = append(out, m)
		}
	}
	return out
}

func TestWritesAreBackgroundPriority(t *testing.T) {
	_, url := startSandbox(t)
	var logs syncBuffer
	c := newClient(t, url, func(o *Options) { o.Logger = zerolog.New(&logs).Level(zerolog.DebugLevel) })
	ctx := context.Background()
	_, err := c.CreateContacts(ctx, []crm.NewContact{{Name: "x"}})
	require.NoError(t, err)
	_, err = c.CreateTasks(ctx, []crm.NewTask{{Text: "t", CompleteTill: time.Now().Add(time.Hour)}})
	require.NoError(t, err)
	require.NoError(t, c.AddTextNote(ctx, crm.EntityLead, 4001, "x"))
	require.NoError(t, c.SetResponsible(ctx, crm.EntityLead, 4001, 1002))
	require.NoError(t, c.AddUnsortedCalls(ctx, []crm.UnsortedCall{{UID: "u", Phone: "+79035550101"}}))
	_, err = c.PendingUnsorted(ctx, "+79035550101")
	require.NoError(t, err)
	_, err = c.OpenTasks(ctx, crm.EntityLead, 4001)
	require.NoError(t, err)
	lines := requestLines(&logs)
	require.Len(t, lines, 7)
	for _, l := range lines {
		assert.Equal(t, "background", l["priority"], "%s %s", l["method"], l["path"])
	}

	_, err = c.CreateContacts(WithPriority(ctx, PriorityCall), []crm.NewContact{{Name: "y"}})
	require.NoError(t, err)
	lines = requestLines(&logs)
	assert.Equal(t, "call", lines[len(lines)-1]["priority"], "the caller's mark wins")
}

func TestWriterNothingToDo(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	ctx := context.Background()
	ids, err := c.CreateContacts(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, ids)
	_, err = c.CreateLeads(ctx, []crm.NewLead{})
	require.NoError(t, err)
	_, err = c.CreateTasks(ctx, []crm.NewTask{{Text: "t", Entity: "deal", EntityID: 1}})
	assert.ErrorContains(t, err, `task 0: unknown entity type "deal"`)
	assert.Empty(t, sb.RequestCounts())
	_, err = c.PendingUnsorted(ctx, "")
	assert.Error(t, err)
	assert.False(t, errors.Is(err, crm.ErrNotFound))
}
