package amocrm

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
)

func TestLinksReadContactsOfLeadsAndCompanies(t *testing.T) {
	_, url := startSandbox(t)
	c := newClient(t, url, nil)
	ctx := context.Background()
	tests := []struct {
		name    string
		read    func(context.Context, int64) ([]int64, error)
		id      int64
		want    []int64
		wantErr error
	}{
		{"lead with a contact", c.LeadContacts, 4001, []int64{2001}, nil},
		{"company with a contact", c.CompanyContacts, 3001, []int64{2001}, nil},
		{"unknown lead", c.LeadContacts, 999999, nil, crm.ErrNotFound},
		{"unknown company", c.CompanyContacts, 999999, nil, crm.ErrNotFound},
		{"no id", c.CompanyContacts, 0, nil, crm.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.read(ctx, tt.id)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
