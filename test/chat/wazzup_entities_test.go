package chat

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	chatsandbox "github.com/crmlink/crmlink/chatbridge/sandbox"
)

// A new client writes in Wazzup and the chat goes to Bob: Wazzup posts createContact,
// keeps the contact crmlink answers with, posts createDeal for it and keeps the deal
// (https://wazzup24.com/help/webhooks/). amoCRM gets the contact and the deal, both Bob's.
func TestWazzupNewClientGetsContactAndDealInAmoCRM(t *testing.T) {
	s := startStack(t)
	d, err := s.chats.WazzupNewClient(context.Background(), "whatsapp", "79990001122", "Nikita", bobWazzup)
	require.NoError(t, err)
	require.Equal(t, 200, d.CreateContact.Status, "createContact: %s", d.CreateContact.Body)
	require.NotNil(t, d.CreateDeal, "Wazzup posts createDeal once createContact was answered with a contact: %s", d.CreateContact.Body)
	require.Equal(t, 200, d.CreateDeal.Status, "createDeal: %s", d.CreateDeal.Body)

	created := s.amo.Created()
	require.Len(t, created.Contacts, 1)
	require.Len(t, created.Leads, 1)
	contact, lead := created.Contacts[0], created.Leads[0]
	require.EqualValues(t, bob, contact.ResponsibleUserID)
	require.Equal(t, []string{unknownPhone}, contact.Phones)
	require.EqualValues(t, bob, lead.ResponsibleUserID, "the deal's responsible is the one Wazzup named")
	require.Equal(t, []int64{contact.ID}, lead.ContactIDs)

	var answered chatsandbox.WazzupDeal
	require.NoError(t, json.Unmarshal(d.CreateDeal.Body, &answered))
	require.Equal(t, []chatsandbox.WazzupDeal{{ID: strconv.FormatInt(lead.ID, 10), ResponsibleUserID: bobWazzup, Name: lead.Name,
		URI: s.cfg.AmoCRM.BaseURL + "/leads/detail/" + strconv.FormatInt(lead.ID, 10), Contacts: []string{strconv.FormatInt(contact.ID, 10)}}},
		s.chats.WazzupDeals(), "Wazzup keeps the deal crmlink answered with")
	ct, ok := s.chats.WazzupContact(strconv.FormatInt(contact.ID, 10))
	require.True(t, ok, "Wazzup keeps the contact crmlink answered with")
	require.Equal(t, bobWazzup, ct.ResponsibleUserID)

	// createContact's assignment also goes through the sync: the new contact already
	// has Bob, so nothing more is written anywhere.
	waitQueueIdle(t, s)
	require.Zero(t, s.crmWrites(), "no responsible write after the entities were created with Bob")
	require.Zero(t, s.chats.APIAssignments(), "no chat reassigned")
}

// An employee presses "+" in Wazzup's Deals list of a known client, choosing Carol:
// createDeal carries the contact id and the responsible, and the deal reaches amoCRM as
// Carol's.
func TestWazzupCreateDealWithResponsibleReachesAmoCRM(t *testing.T) {
	s := startStack(t)
	d, err := s.chats.WazzupCreateDeal(context.Background(), carolWazzup, []string{wazzupChat}, "byUser")
	require.NoError(t, err)
	require.Equal(t, 200, d.Status, "createDeal: %s", d.Body)

	created := s.amo.Created()
	require.Len(t, created.Leads, 1)
	require.EqualValues(t, carol, created.Leads[0].ResponsibleUserID)
	require.Equal(t, []int64{clientID}, created.Leads[0].ContactIDs)
	require.Empty(t, created.Contacts, "the client's contact is the one Wazzup named, not a new one")
	require.EqualValues(t, ann, s.responsible(t, "contact", clientID), "the contact keeps its responsible")
	waitQueueIdle(t, s)
}
