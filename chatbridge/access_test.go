package chatbridge_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/scenarios/scenariotest"
)

func TestPermitRoleTable(t *testing.T) {
	tests := []struct {
		role                chatbridge.Role
		responsible         bool
		wantRead, wantWrite bool
	}{
		{chatbridge.RoleManager, true, true, true},
		{chatbridge.RoleManager, false, false, false},
		{chatbridge.RoleSupervisor, true, true, true},
		{chatbridge.RoleSupervisor, false, true, true},
		{chatbridge.RoleQualityControl, true, true, false},
		{chatbridge.RoleQualityControl, false, true, false},
		{"", true, false, false},
	}
	for _, tt := range tests {
		read, write := chatbridge.Permit(tt.role, tt.responsible)
		require.Equal(t, tt.wantRead, read, "%s responsible=%v read", tt.role, tt.responsible)
		require.Equal(t, tt.wantWrite, write, "%s responsible=%v write", tt.role, tt.responsible)
	}
}

func TestAccessCheckOverTheThreeRoles(t *testing.T) {
	const (
		mgrContact crm.UserID = 11 // responsible for the contact
		mgrDeal    crm.UserID = 12 // responsible for the client's open deal only
		mgrClosed  crm.UserID = 13 // responsible for a closed deal only
		mgrOther   crm.UserID = 14
		super      crm.UserID = 21
		qc         crm.UserID = 31
		stranger   crm.UserID = 99
	)
	fake := scenariotest.New()
	cid := fake.AddContact(crm.Contact{Name: "Client", Responsible: mgrContact, Phones: []string{string(clientPhone)}})
	fake.AddLead(crm.Lead{Name: "open", Responsible: mgrDeal, StatusID: 5101}, cid)
	fake.AddLead(crm.Lead{Name: "won", Responsible: mgrClosed, StatusID: crm.StatusWon}, cid)
	users, err := chatbridge.NewUserMap([]chatbridge.UserConfig{
		{CRMUserID: mgrContact, Wazzup: "a"}, {CRMUserID: mgrDeal, Wazzup: "b"}, {CRMUserID: mgrClosed, Wazzup: "c"},
		{CRMUserID: mgrOther, Wazzup: "d"}, {CRMUserID: super, Role: chatbridge.RoleSupervisor, Wazzup: "e"},
		{CRMUserID: qc, Role: chatbridge.RoleQualityControl, Wazzup: "f"},
	})
	require.NoError(t, err)
	access := chatbridge.NewAccess(users, fake)

	tests := []struct {
		name        string
		user        crm.UserID
		phone       crm.Phone
		read, write bool
		role        chatbridge.Role
	}{
		{"manager responsible for the contact", mgrContact, clientPhone, true, true, chatbridge.RoleManager},
		{"manager responsible for the open deal", mgrDeal, clientPhone, true, true, chatbridge.RoleManager},
		{"manager of a closed deal only", mgrClosed, clientPhone, false, false, chatbridge.RoleManager},
		{"another manager", mgrOther, clientPhone, false, false, chatbridge.RoleManager},
		{"manager, unknown client", mgrContact, otherPhone, false, false, chatbridge.RoleManager},
		{"supervisor", super, clientPhone, true, true, chatbridge.RoleSupervisor},
		{"supervisor, unknown client", super, otherPhone, true, true, chatbridge.RoleSupervisor},
		{"quality control", qc, clientPhone, true, false, chatbridge.RoleQualityControl},
		{"user without a chat role", stranger, clientPhone, false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := access.Check(context.Background(), tt.user, tt.phone)
			require.NoError(t, err)
			require.Equal(t, tt.role, p.Role)
			require.Equal(t, tt.read, p.Read, p.Reason)
			require.Equal(t, tt.write, p.Write, p.Reason)
			require.NotEmpty(t, p.Reason)
		})
	}

	t.Run("a CRM failure is an error, not a refusal", func(t *testing.T) {
		fake.FailRead = func(scenariotest.Op) error { return scenariotest.ErrInjected }
		_, err := access.Check(context.Background(), mgrContact, clientPhone)
		require.True(t, errors.Is(err, crm.ErrUnavailable), "%v", err)
	})
}
