package amocrm

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
)

func searchRig(t *testing.T) (*sandbox.Server, *Client) {
	t.Helper()
	sb := sandbox.New(sandbox.Seed{
		Users: []sandbox.User{{ID: 1, Name: "Admin"}, {ID: 2, Name: "Manager"}},
		Contacts: []sandbox.Contact{
			{ID: 10, Name: "Anna", ResponsibleUserID: 2, Emails: []string{"Anna@Example.com"}, Fields: map[string]string{"ИНН": "77 0123 4567"}},
			{ID: 11, Name: "Mentions", ResponsibleUserID: 1, Fields: map[string]string{"Комментарий": "anna@example.com, ИНН 7701234567"}},
		},
	}, sandbox.WithRateLimit(-1))
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	t.Cleanup(sb.Close)
	return sb, newClient(t, ts.URL, nil)
}

func TestFindContactsByEmailAndField(t *testing.T) {
	sb, c := searchRig(t)
	inn, ok := sb.FieldID("ИНН")
	require.True(t, ok)
	ctx := context.Background()
	tests := []struct {
		name string
		find func() ([]crm.Contact, error)
		want []int64
	}{
		{"email, case aside; the comment that mentions it is no match", func() ([]crm.Contact, error) { return c.FindContactsByEmail(ctx, " anna@example.COM ") }, []int64{10}},
		{"unknown email: amoCRM's 204", func() ([]crm.Contact, error) { return c.FindContactsByEmail(ctx, "nobody@example.com") }, nil},
		{"field by its digits", func() ([]crm.Contact, error) { return c.FindContactsByField(ctx, inn, "7701234567") }, []int64{10}},
		{"field value only in another field", func() ([]crm.Contact, error) { return c.FindContactsByField(ctx, inn, "ИНН 7701234567") }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.find()
			require.NoError(t, err)
			var ids []int64
			for _, ct := range got {
				ids = append(ids, ct.ID)
			}
			assert.Equal(t, tt.want, ids)
		})
	}
	_, err := c.FindContactsByField(ctx, 0, "x")
	assert.Error(t, err)
	_, err = c.FindContactsByEmail(ctx, " ")
	assert.Error(t, err)

	ids, err := c.CreateContacts(ctx, []crm.NewContact{{Name: "Boris", Fields: []crm.FieldValue{{FieldID: inn, Value: "500100732259"}}}})
	require.NoError(t, err)
	found, err := c.FindContactsByField(ctx, inn, "500100732259")
	require.NoError(t, err)
	require.Len(t, found, 1)
	assert.Equal(t, ids[0], found[0].ID)
}

func TestUnsortedForms(t *testing.T) {
	sb, c := searchRig(t)
	ctx := context.Background()
	form := crm.UnsortedForm{UID: "chat-1", SourceName: "Jivo", FormID: "chat", FormName: "Jivo chat", FormPage: "https://shop.example/",
		Contact: crm.NewContact{Name: "Oleg", Phones: []crm.Phone{"+79035550101"}, Emails: []string{"oleg@example.com"}}, LeadName: "Jivo: Oleg", Tags: []string{"jivo"}}
	e1, err := c.AddUnsortedForm(ctx, form)
	require.NoError(t, err)
	e2, err := c.AddUnsortedForm(ctx, form)
	require.NoError(t, err, "the same source uid while waiting is the same entry")
	assert.Equal(t, e1, e2)
	require.Len(t, sb.Created().Unsorted, 1)

	waiting, err := c.UnsortedWaiting(ctx, e1.UID)
	require.NoError(t, err)
	assert.True(t, waiting)
	acc, ok, err := c.AcceptUnsorted(ctx, e1.UID, 2, 0)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, e1, acc)
	got := sb.Created()
	require.Len(t, got.Leads, 1)
	assert.Equal(t, int64(2), got.Leads[0].ResponsibleUserID)
	assert.Equal(t, []string{"jivo"}, got.Leads[0].Tags)
	assert.Equal(t, &sandbox.FormsMetadata{FormID: "chat", FormName: "Jivo chat", FormPage: "https://shop.example/", FormSentAt: got.Unsorted[0].Form.FormSentAt}, got.Unsorted[0].Form)

	_, ok, err = c.AcceptUnsorted(ctx, e1.UID, 1, 0)
	require.NoError(t, err, "an entry already decided is left as it is")
	assert.False(t, ok)
	assert.Equal(t, int64(2), sb.Created().Leads[0].ResponsibleUserID)

	_, err = c.AddUnsortedForm(ctx, crm.UnsortedForm{UID: "chat-2", Contact: crm.NewContact{Responsible: 99}})
	assert.ErrorIs(t, err, crm.ErrRejected, "a user the account does not have")
}
