package amocrm

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
)

func TestFindContactsByPhone(t *testing.T) {
	_, url := startSandbox(t)
	c := newClient(t, url, nil)
	cases := []struct {
		name, dialled string
		want          []int64
	}{
		{"card +7 (495) 123-45-67, a comment elsewhere is dropped", "+74951234567", []int64{2001}},
		{"dialled with trunk prefix", "84951234567", []int64{2001}},
		{"second phone 8 916 000-11-22", "+79160001122", []int64{2001}},
		{"card 84957654321", "+7 495 765 43 21", []int64{2002}},
		{"card 74959990011", "4959990011", []int64{2003}},
		{"card +7 495 555-00-00", "+74955550000", []int64{2004}},
		{"unknown number is 204, no error", "+73430000000", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := crm.ParsePhone(tc.dialled, "RU")
			require.NoError(t, err)
			got, err := c.FindContactsByPhone(context.Background(), p)
			require.NoError(t, err)
			var ids []int64
			for _, ct := range got {
				ids = append(ids, ct.ID)
			}
			assert.Equal(t, tc.want, ids)
		})
	}
}

func TestFindContactsByPhoneFields(t *testing.T) {
	_, url := startSandbox(t)
	got, err := newClient(t, url, nil).FindContactsByPhone(context.Background(), "+74951234567")
	require.NoError(t, err)
	require.Len(t, got, 1)
	ct := got[0]
	assert.Equal(t, "Иван Петров", ct.Name)
	assert.Equal(t, crm.UserID(1001), ct.Responsible)
	assert.Equal(t, []string{"+7 (495) 123-45-67", "8 916 000-11-22"}, ct.Phones)
	assert.Equal(t, int64(3001), ct.CompanyID)
	assert.Equal(t, []int64{4001, 4002}, ct.LeadIDs)
	assert.False(t, ct.UpdatedAt.IsZero())
}

func TestLeads(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	ctx := context.Background()

	leads, err := c.Leads(ctx, []int64{4001, 4002})
	require.NoError(t, err)
	require.Len(t, leads, 2)
	assert.Equal(t, int64(4001), leads[0].ID)
	assert.False(t, leads[0].Open(), "status 142 is won")
	assert.Equal(t, int64(4002), leads[1].ID)
	assert.True(t, leads[1].Open())
	assert.Equal(t, crm.UserID(1002), leads[1].Responsible)
	assert.Equal(t, int64(5001), leads[1].PipelineID)
	assert.Equal(t, 1, sb.Requests("GET /api/v4/leads"))

	leads, err = c.Leads(ctx, []int64{4003, 9999})
	require.NoError(t, err)
	require.Len(t, leads, 1, "an id amoCRM does not know is left out")
	assert.Equal(t, int64(4003), leads[0].ID)

	for _, ids := range [][]int64{nil, {}} {
		leads, err = c.Leads(ctx, ids)
		require.NoError(t, err)
		assert.Nil(t, leads)
	}
	assert.Equal(t, 2, sb.Requests("GET /api/v4/leads"), "no ids, no request")
}

func TestOwnerLookupReadsLeadsByTheFoundIDs(t *testing.T) {
	// The search returns the lead ids (with=leads), so the contact is not read again.
	sb, url := startSandbox(t)
	dir := newClient(t, url, nil).CallPath()
	ctx := context.Background()
	found, err := dir.FindContactsByPhone(ctx, "+74951234567")
	require.NoError(t, err)
	require.Len(t, found, 1)
	leads, err := dir.Leads(ctx, found[0].LeadIDs)
	require.NoError(t, err)
	assert.Len(t, leads, 2)
	assert.Equal(t, 1, sb.Requests("GET /api/v4/contacts"))
	assert.Equal(t, 1, sb.Requests("GET /api/v4/leads"))
	assert.Zero(t, sb.Requests("GET /api/v4/contacts/2001"))
}

func TestContactCompanyUsers(t *testing.T) {
	_, url := startSandbox(t)
	c := newClient(t, url, nil)
	ctx := context.Background()

	ct, err := c.Contact(ctx, 2002)
	require.NoError(t, err)
	assert.Equal(t, "Ольга Соколова", ct.Name)
	assert.Equal(t, []int64{4003}, ct.LeadIDs)
	assert.Zero(t, ct.CompanyID)

	_, err = c.Contact(ctx, 9999)
	require.ErrorIs(t, err, crm.ErrNotFound)
	assert.Contains(t, err.Error(), "amocrm GET /api/v4/contacts/9999")

	co, err := c.Company(ctx, 3001)
	require.NoError(t, err)
	assert.Equal(t, crm.Company{ID: 3001, Name: "ООО Ромашка", Responsible: 1002, UpdatedAt: co.UpdatedAt}, co)
	_, err = c.Company(ctx, 1)
	assert.ErrorIs(t, err, crm.ErrNotFound)

	users, err := c.Users(ctx)
	require.NoError(t, err)
	assert.Equal(t, []crm.User{
		{ID: 1001, Name: "Анна Смирнова", Email: "anna@example.com", Active: true},
		{ID: 1002, Name: "Борис Кузнецов", Email: "boris@example.com", Active: true},
		{ID: 1003, Name: "Вера Попова", Email: "vera@example.com", Active: false},
	}, users)
}
