package amocrm

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
)

// Concurrent writers share requests: 120 call notes from 120 outcomes go out in a few
// POSTs of at most 50, and a note on a lead that does not exist fails only its own writer.
func TestConcurrentWritesShareRequests(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	leads, err := c.CreateLeads(context.Background(), []crm.NewLead{{Name: "a"}, {Name: "b"}})
	require.NoError(t, err)
	sb.ResetCounters()

	const n = 120
	const bad = 77
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			on := leads[i%2]
			if i == bad {
				on = 999999
			}
			errs[i] = c.AddCallNotes(context.Background(), []crm.CallNote{{
				Entity: crm.EntityLead, EntityID: on, Direction: crm.CallIn, Uniq: fmt.Sprint("call-", i),
				Phone: "+79160000000", Status: crm.CallStatusAnswered,
			}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i == bad {
			var ve *ValidationError
			require.ErrorAs(t, err, &ve, "the note on a missing lead fails its own writer")
			assert.Equal(t, "0", ve.Items[0].RequestID, "named as its writer sent it")
			continue
		}
		assert.NoError(t, err, "note %d", i)
	}
	assert.Len(t, sb.Created().Notes, n-1, "every other note is written, once")
	posts := sb.Requests("POST /api/v4/leads/notes")
	assert.LessOrEqual(t, posts, 6, "120 notes share requests of up to 50 (a refused batch goes again without the bad note)")
	assert.GreaterOrEqual(t, posts, 3)
}

// The missed-call check's reads of open tasks share requests too, and each caller gets
// exactly its entity's tasks.
func TestConcurrentOpenTaskReadsShareRequests(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	const n = 60
	names := make([]crm.NewLead, n)
	for i := range names {
		names[i] = crm.NewLead{Name: fmt.Sprint("deal ", i)}
	}
	leads, err := c.CreateLeads(context.Background(), names)
	require.NoError(t, err)
	due := time.Now().Add(time.Hour)
	var tasks []crm.NewTask
	for i, id := range leads {
		for range i % 3 { // 0, 1 or 2 open tasks per deal
			tasks = append(tasks, crm.NewTask{Text: fmt.Sprint("call ", i), TypeID: crm.TaskTypeCall,
				Entity: crm.EntityLead, EntityID: id, CompleteTill: due})
		}
	}
	_, err = c.CreateTasks(context.Background(), tasks)
	require.NoError(t, err)
	sb.ResetCounters()

	got := make([][]crm.Task, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, id := range leads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = c.OpenTasks(context.Background(), crm.EntityLead, id)
		}()
	}
	wg.Wait()
	for i := range leads {
		require.NoError(t, errs[i])
		require.Len(t, got[i], i%3, "deal %d", i)
		for _, task := range got[i] {
			assert.Equal(t, leads[i], task.EntityID)
			assert.Equal(t, fmt.Sprint("call ", i), task.Text)
		}
	}
	reads := sb.Requests("GET /api/v4/tasks")
	assert.LessOrEqual(t, reads, 4, "60 deals' tasks in requests of up to 50 deals")
}

// Unsorted entries of concurrent outcomes share requests too: 60 calls go out in a few
// POSTs of at most 50; an entry already waiting (a retried outcome) is skipped without an
// error, and an entry amoCRM refuses for another reason fails only its own writer.
func TestConcurrentUnsortedCallsShareRequests(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	ctx := context.Background()
	entry := func(i int) crm.UnsortedCall {
		return crm.UnsortedCall{UID: fmt.Sprint("1700000000.", i), Phone: crm.Phone(fmt.Sprintf("+7903555%04d", i)),
			CalledAt: time.Unix(1700000000, 0), Responsible: 1002, LeadName: fmt.Sprint("call ", i)}
	}
	const n = 60
	const waiting, bad = 13, 41
	require.NoError(t, c.AddUnsortedCalls(ctx, []crm.UnsortedCall{entry(waiting)}))
	sb.ResetCounters()

	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := entry(i)
			if i == bad {
				e.Responsible = 77 // no such user
			}
			errs[i] = c.AddUnsortedCalls(ctx, []crm.UnsortedCall{e})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i == bad {
			var ve *ValidationError
			require.ErrorAs(t, err, &ve, "the refused entry fails its own writer")
			assert.Equal(t, entry(bad).UID, ve.Items[0].RequestID)
			continue
		}
		assert.NoError(t, err, "entry %d", i)
	}
	uids := map[string]int{}
	for _, u := range sb.Created().Unsorted {
		uids[u.SourceUID]++
	}
	assert.Len(t, uids, n-1, "every entry but the refused one waits in Unsorted")
	for uid, k := range uids {
		assert.Equal(t, 1, k, "%s created once", uid)
	}
	posts := sb.Requests("POST /api/v4/leads/unsorted/sip")
	assert.LessOrEqual(t, posts, 7, "60 entries share requests of up to 50 (a refused batch goes again without the entries it named)")
	assert.GreaterOrEqual(t, posts, 2)
}

// Unsorted forms entries of concurrent chats share requests, and each chat gets its own
// entry back (its uid, lead and contact); one already waiting comes back as it waits.
func TestConcurrentUnsortedFormsShareRequests(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	ctx := context.Background()
	form := func(i int) crm.UnsortedForm {
		return crm.UnsortedForm{UID: fmt.Sprint("jivo:chat-", i), SourceName: "Jivo", FormPage: "https://shop.example/",
			Contact: crm.NewContact{Name: fmt.Sprint("Visitor ", i)}, LeadName: fmt.Sprint("Jivo: Visitor ", i)}
	}
	const n = 30
	const waiting = 7
	before, err := c.AddUnsortedForm(ctx, form(waiting))
	require.NoError(t, err)
	sb.ResetCounters()

	got := make([]crm.UnsortedEntry, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = c.AddUnsortedForm(ctx, form(i))
		}()
	}
	wg.Wait()
	byUID := map[string]sandbox.Unsorted{}
	for _, u := range sb.Created().Unsorted {
		byUID[u.UID] = u
	}
	require.Len(t, byUID, n, "one entry per chat")
	for i := range n {
		require.NoError(t, errs[i], "chat %d", i)
		u, ok := byUID[got[i].UID]
		require.True(t, ok, "chat %d got an entry that exists", i)
		assert.Equal(t, form(i).UID, u.SourceUID, "chat %d got its own entry", i)
		assert.Equal(t, u.Lead.ID, got[i].LeadID)
		require.NotNil(t, u.Contact)
		assert.Equal(t, u.Contact.ID, got[i].ContactID)
	}
	assert.Equal(t, before, got[waiting], "the waiting entry, as it waits")
	assert.LessOrEqual(t, sb.Requests("POST /api/v4/leads/unsorted/forms"), 4, "30 entries share requests (a refused batch goes again without the waiting one)")
}
