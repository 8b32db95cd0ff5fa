package chatbridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/wazzup"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm"
	amosandbox "github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/httpapi"
)

// Wazzup's webhooks page (https://wazzup24.com/help/webhooks/): "the CRM should create the
// contact and respond with 200 OK along with a JSON object of the new entity, matching the
// CRUD route signature for contacts", and the same for deals. The answers, per case.
func TestWazzupCreateContactAndDealAnswersCarryTheEntity(t *testing.T) {
	const known, knownDeal = 2001, 4001
	amo := amosandbox.New(amosandbox.Seed{
		Users: []amosandbox.User{{ID: 900, Name: "crmlink"}, {ID: 1001, Name: "Ann"}, {ID: 1002, Name: "Bob"}},
		Contacts: []amosandbox.Contact{{ID: known, Name: "Anna Petrova", ResponsibleUserID: 1001, Phones: []string{"8 (916) 123-45-67"},
			LeadIDs: []int64{knownDeal}}},
		Leads: []amosandbox.Lead{{ID: knownDeal, Name: "Order #17", PipelineID: amosandbox.DefaultPipelineID, StatusID: amosandbox.DefaultStatusID,
			ResponsibleUserID: 1001, ContactIDs: []int64{known}}},
	}, amosandbox.WithRateLimit(-1))
	amoSrv := httptest.NewServer(amo)
	defer amoSrv.Close()
	defer amo.Close()
	client, err := amocrm.New(amocrm.Options{BaseURL: amoSrv.URL, Token: amosandbox.DefaultToken, RateLimit: 1000})
	require.NoError(t, err)
	users, err := chatbridge.NewUserMap([]chatbridge.UserConfig{{CRMUserID: 1001, Wazzup: "wz-ann"}, {CRMUserID: 1002, Wazzup: "wz-bob"}})
	require.NoError(t, err)
	uri := func(e crm.EntityType, id int64) string {
		return "https://acme.amocrm.ru/" + string(e) + "s/detail/" + strconv.FormatInt(id, 10)
	}
	wz, err := wazzup.New(wazzup.Options{CRMKey: wazzupCRMKey})
	require.NoError(t, err)
	var queued []string
	publish := func(_ context.Context, q events.Envelope) error { queued = append(queued, q.ID); return nil }
	h := httptest.NewServer(httpapi.ChatWebhook(wz, publish, chatbridge.NewEntities(client, client, users, uri, zerolog.Nop()), zerolog.Nop()))
	defer h.Close()

	newContact, newLead := func() int64 { return amo.Created().Contacts[0].ID }, func(i int) int64 { return amo.Created().Leads[i].ID }
	tests := []struct {
		name   string
		body   string
		status int
		// want is the answer; {contact} and {lead} stand for the ids amoCRM gave.
		want   string
		check  func(t *testing.T)
		queued int
	}{
		{
			name:   "createContact of a number amoCRM knows: the contact found",
			body:   `{"createContact": {"responsibleUserId": "wz-bob", "name": "Anna", "contactData": [{"chatType": "whatsapp", "chatId": "79161234567"}], "source": "auto"}}`,
			status: 200,
			want: `{"id": "2001", "responsibleUserId": "wz-bob", "name": "Anna Petrova", "contactData": [{"chatType": "whatsapp", "chatId": "79161234567"}],
				"uri": "https://acme.amocrm.ru/contacts/detail/2001"}`,
			check:  func(t *testing.T) { assert.Empty(t, amo.Created().Contacts, "no second contact for a known number") },
			queued: 1, // the chat's responsible, for the sync
		},
		{
			name:   "createContact of a new number: the contact created with the chat's responsible",
			body:   `{"createContact": {"responsibleUserId": "wz-ann", "name": "Oleg", "contactData": [{"chatType": "whatsapp", "chatId": "79035550000"}], "source": "auto"}}`,
			status: 200,
			want: `{"id": "{contact}", "responsibleUserId": "wz-ann", "name": "Oleg", "contactData": [{"chatType": "whatsapp", "chatId": "79035550000"}],
				"uri": "https://acme.amocrm.ru/contacts/detail/{contact}"}`,
			check: func(t *testing.T) {
				c := amo.Created().Contacts
				require.Len(t, c, 1)
				assert.Equal(t, "Oleg", c[0].Name)
				assert.EqualValues(t, 1001, c[0].ResponsibleUserID)
				assert.Equal(t, []string{"+79035550000"}, c[0].Phones)
			},
			queued: 1,
		},
		{
			name:   "createDeal: a deal of the contact with the chat's responsible",
			body:   `{"createDeal": {"responsibleUserId": "wz-bob", "contacts": ["2001"], "source": "byUser"}}`,
			status: 200,
			want: `{"id": "{lead}", "responsibleUserId": "wz-bob", "name": "Deal from wazzup chat", "uri": "https://acme.amocrm.ru/leads/detail/{lead}",
				"contacts": ["2001"], "closed": false}`,
			check: func(t *testing.T) {
				l := amo.Created().Leads
				require.Len(t, l, 1)
				assert.EqualValues(t, 1002, l[0].ResponsibleUserID, "the deal's responsible is the one Wazzup named")
				assert.Equal(t, []int64{known}, l[0].ContactIDs)
			},
		},
		{
			name:   "the same createDeal again (an answer lost): the same deal, not a second one",
			body:   `{"createDeal": {"responsibleUserId": "wz-bob", "contacts": ["2001"], "source": "byUser"}}`,
			status: 200,
			want: `{"id": "{lead}", "responsibleUserId": "wz-bob", "name": "Deal from wazzup chat", "uri": "https://acme.amocrm.ru/leads/detail/{lead}",
				"contacts": ["2001"], "closed": false}`,
			check: func(t *testing.T) { assert.Len(t, amo.Created().Leads, 1) },
		},
		{
			name:   "createDeal of a contact id that is not amoCRM's",
			body:   `{"createDeal": {"responsibleUserId": "wz-bob", "contacts": ["abc"], "source": "auto"}}`,
			status: 400,
		},
		{
			name:   "messages are answered ok",
			body:   `{"messages": [{"messageId": "m1", "chatType": "whatsapp", "chatId": "79161234567", "isEcho": false, "text": "hi", "status": "inbound"}]}`,
			status: 200,
			want:   `{"result": "ok"}`,
			queued: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			queued = nil
			req, err := http.NewRequest(http.MethodPost, h.URL+"/v1/chat/wazzup", strings.NewReader(tt.body))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+wazzupCRMKey)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, tt.status, resp.StatusCode, string(body))
			if tt.want != "" {
				want := tt.want
				if strings.Contains(want, "{contact}") {
					want = strings.ReplaceAll(want, "{contact}", strconv.FormatInt(newContact(), 10))
				}
				if strings.Contains(want, "{lead}") {
					want = strings.ReplaceAll(want, "{lead}", strconv.FormatInt(newLead(0), 10))
				}
				assert.JSONEq(t, want, string(body))
				assert.True(t, json.Valid(bytes.TrimSpace(body)))
			}
			if tt.check != nil {
				tt.check(t)
			}
			assert.Len(t, queued, tt.queued, "events queued for the sync")
		})
	}
}
