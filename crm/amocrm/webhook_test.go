package amocrm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
)

func form(t *testing.T, body string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(body)
	require.NoError(t, err)
	return v
}

func TestParseWebhook(t *testing.T) {
	acc := Account{ID: 29000001, Subdomain: "sandbox"}
	const account = "&account[subdomain]=sandbox&account[id]=29000001"
	cases := []struct {
		name string
		body string
		want []crm.ResponsibleChange
	}{
		{
			name: "lead responsible changed",
			body: "leads[responsible][0][id]=4002&leads[responsible][0][responsible_user_id]=1001&leads[responsible][0][old_responsible_user_id]=1002" +
				"&leads[responsible][0][modified_user_id]=1003&leads[responsible][0][status_id]=5101&leads[responsible][0][last_modified]=1700000000" +
				"&leads[responsible][0][custom_fields][0][id]=5&leads[responsible][0][custom_fields][0][values][0][value]=x" + account,
			want: []crm.ResponsibleChange{{Entity: crm.EntityLead, ID: 4002, Responsible: 1001, OldResponsible: 1002, ModifiedBy: 1003, At: time.Unix(1700000000, 0).UTC()}},
		},
		{
			name: "contact update with type, updated_at as time",
			body: "contacts[update][0][id]=2001&contacts[update][0][responsible_user_id]=1002&contacts[update][0][old_responsible_user_id]=1001" +
				"&contacts[update][0][type]=contact&contacts[update][0][updated_at]=1700000001" + account,
			want: []crm.ResponsibleChange{{Entity: crm.EntityContact, ID: 2001, Responsible: 1002, OldResponsible: 1001, At: time.Unix(1700000001, 0).UTC()}},
		},
		{
			name: "company arrives under contacts",
			body: "contacts[responsible][0][id]=3001&contacts[responsible][0][responsible_user_id]=1001&contacts[responsible][0][type]=company" + account,
			want: []crm.ResponsibleChange{{Entity: crm.EntityCompany, ID: 3001, Responsible: 1001}},
		},
		{
			name: "update without responsible says nothing",
			body: "leads[update][0][id]=4002&leads[update][0][status_id]=142" + account,
		},
		{
			name: "same responsible as before is no change",
			body: "leads[update][0][id]=4002&leads[update][0][responsible_user_id]=7&leads[update][0][old_responsible_user_id]=7" + account,
		},
		{
			name: "responsible and update of the same change are one change",
			body: "leads[responsible][0][id]=1&leads[responsible][0][responsible_user_id]=7&leads[responsible][0][old_responsible_user_id]=6" +
				"&leads[update][0][id]=1&leads[update][0][responsible_user_id]=7" + account,
			want: []crm.ResponsibleChange{{Entity: crm.EntityLead, ID: 1, Responsible: 7, OldResponsible: 6}},
		},
		{
			name: "several entries keep their order, leads before contacts",
			body: "contacts[update][0][id]=5&contacts[update][0][responsible_user_id]=9" +
				"&leads[update][10][id]=3&leads[update][10][responsible_user_id]=8&leads[update][2][id]=2&leads[update][2][responsible_user_id]=8" + account,
			want: []crm.ResponsibleChange{
				{Entity: crm.EntityLead, ID: 2, Responsible: 8},
				{Entity: crm.EntityLead, ID: 3, Responsible: 8},
				{Entity: crm.EntityContact, ID: 5, Responsible: 9},
			},
		},
		{
			name: "task and unsorted events carry no responsible change",
			body: "task[update][0][id]=9&task[update][0][responsible_user_id]=1&unsorted[delete][0][action]=accept" + account,
		},
		{
			name: "deleted leads are ignored",
			body: "leads[delete][0][id]=4&leads[delete][0][responsible_user_id]=1" + account,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, gotAcc, err := ParseWebhook(form(t, tc.body))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, acc, gotAcc)
		})
	}
}

func TestParseWebhookRejects(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"empty", "", "no account, leads or contacts"},
		{"garbage", "hello=world&x[1]=2", "no account, leads or contacts"},
		{"non-numeric id", "leads[update][0][id]=abc&leads[update][0][responsible_user_id]=1", `leads[update][0][id] = "abc" is not a valid number`},
		{"non-numeric responsible", "leads[update][0][id]=1&leads[update][0][responsible_user_id]=boss", "responsible_user_id"},
		{"negative responsible", "leads[update][0][id]=1&leads[update][0][responsible_user_id]=-4", "responsible_user_id"},
		{"bad index", "leads[update][first][id]=1", "entry index is not a number"},
		{"unknown type", "contacts[update][0][id]=1&contacts[update][0][responsible_user_id]=2&contacts[update][0][type]=lead", `unknown type "lead"`},
		{"responsible without id", "contacts[update][0][responsible_user_id]=2", "no entity id"},
		{"bad account id", "account[id]=x", "account[id]"},
		{"bad time", "leads[update][0][id]=1&leads[update][0][responsible_user_id]=2&leads[update][0][last_modified]=yesterday", "last_modified"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := ParseWebhook(form(t, tc.body))
			require.ErrorIs(t, err, ErrWebhook)
			assert.Contains(t, err.Error(), tc.want)
			assert.Nil(t, got)
		})
	}
}

func FuzzParseWebhook(f *testing.F) {
	for _, seed := range []string{
		"leads[responsible][0][id]=4002&leads[responsible][0][responsible_user_id]=1001&leads[responsible][0][old_responsible_user_id]=1002&account[id]=1",
		"contacts[update][0][id]=1&contacts[update][0][responsible_user_id]=2&contacts[update][0][type]=company&account[subdomain]=x",
		"contacts[update][0][custom_fields][0][values][0][value]=1&leads[add][3][id]=7&leads[add][3][responsible_user_id]=0",
		"leads[update][999999999999][id]=1",
		"leads[[[]]]=1&leads]=2&[=3&account[id]=99999999999999999999",
		"a=b",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		v, _ := url.ParseQuery(body)
		changes, _, err := ParseWebhook(v)
		if err != nil {
			return
		}
		for _, c := range changes {
			if c.ID <= 0 || c.Responsible < 0 {
				t.Fatalf("bad change %+v from %q", c, body)
			}
			switch c.Entity {
			case crm.EntityLead, crm.EntityContact, crm.EntityCompany:
			default:
				t.Fatalf("bad entity %q from %q", c.Entity, body)
			}
		}
	})
}

// TestSandboxWebhooksParse checks the two halves against each other: what the sandbox
// posts when a manager reassigns an entity is what ParseWebhook understands.
func TestSandboxWebhooksParse(t *testing.T) {
	type parsed struct {
		changes []crm.ResponsibleChange
		acc     Account
		err     error
	}
	got := make(chan parsed, 4)
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ch, acc, err := ParseWebhook(r.PostForm)
		got <- parsed{ch, acc, err}
	}))
	t.Cleanup(rs.Close)
	sb, _ := startSandbox(t)
	require.NoError(t, sb.SetWebhookURL(rs.URL))

	cases := []struct {
		update sandbox.ResponsibleUpdate
		want   crm.ResponsibleChange
	}{
		{sandbox.ResponsibleUpdate{Entity: "contact", ID: 2001, ResponsibleUserID: 1002, ModifiedUserID: 1003},
			crm.ResponsibleChange{Entity: crm.EntityContact, ID: 2001, Responsible: 1002, OldResponsible: 1001, ModifiedBy: 1003}},
		{sandbox.ResponsibleUpdate{Entity: "company", ID: 3001, ResponsibleUserID: 1001, ModifiedUserID: 1001},
			crm.ResponsibleChange{Entity: crm.EntityCompany, ID: 3001, Responsible: 1001, OldResponsible: 1002, ModifiedBy: 1001}},
		{sandbox.ResponsibleUpdate{Entity: "lead", ID: 4003, ResponsibleUserID: 1003, ModifiedUserID: 1002},
			crm.ResponsibleChange{Entity: crm.EntityLead, ID: 4003, Responsible: 1003, OldResponsible: 1002, ModifiedBy: 1002}},
	}
	for _, tc := range cases {
		t.Run(tc.update.Entity, func(t *testing.T) {
			res, err := sb.SetResponsible(context.Background(), tc.update)
			require.NoError(t, err)
			require.NotNil(t, res.Webhook)
			assert.Equal(t, http.StatusOK, res.Webhook.Status)
			p := <-got
			require.NoError(t, p.err)
			assert.Equal(t, Account{ID: sandbox.DefaultAccountID, Subdomain: "sandbox"}, p.acc)
			require.Len(t, p.changes, 1)
			assert.False(t, p.changes[0].At.IsZero())
			p.changes[0].At = time.Time{}
			assert.Equal(t, tc.want, p.changes[0])
		})
	}
}
