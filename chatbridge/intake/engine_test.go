package intake_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/intake"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/scenarios"
)

// TestReturningClient: a client found by the configured fields keeps their responsible and
// open deal, which gets the chat's note; with match all, one field is not enough.
func TestReturningClient(t *testing.T) {
	unknownPhone := crm.Phone("+79035550101")
	tests := []struct {
		name   string
		by     []intake.Field
		match  intake.Match
		ev     chatbridge.Event
		want   intake.Result
		wantCt []sandbox.Contact // contacts created
		wantLd []sandbox.Lead    // leads created
		noteOn string            // "leads/601"
	}{
		{
			name: "phone or email: found by phone goes to the existing responsible and open deal",
			by:   []intake.Field{intake.FieldPhone, intake.FieldEmail}, match: intake.MatchAny,
			ev:     chat("c1", annaPhone, "other@example.com"),
			want:   intake.Result{DuplicateBy: intake.FieldPhone, ContactID: annaID, LeadID: annaOpenDeal, Responsible: second, NoteOn: &intake.EntityRef{Entity: crm.EntityLead, ID: annaOpenDeal}},
			noteOn: "leads/601",
		},
		{
			name: "phone or email: found by email (not by the comment that mentions it)",
			by:   []intake.Field{intake.FieldPhone, intake.FieldEmail}, match: intake.MatchAny,
			ev:     chat("c2", unknownPhone, annaEmail),
			want:   intake.Result{DuplicateBy: intake.FieldEmail, ContactID: annaID, LeadID: annaOpenDeal, Responsible: second, NoteOn: &intake.EntityRef{Entity: crm.EntityLead, ID: annaOpenDeal}},
			noteOn: "leads/601",
		},
		{
			name: "phone and email: both match",
			by:   []intake.Field{intake.FieldPhone, intake.FieldEmail}, match: intake.MatchAll,
			ev:     chat("c3", annaPhone, annaEmail),
			want:   intake.Result{DuplicateBy: "phone+email", ContactID: annaID, LeadID: annaOpenDeal, Responsible: second, NoteOn: &intake.EntityRef{Entity: crm.EntityLead, ID: annaOpenDeal}},
			noteOn: "leads/601",
		},
		{
			name: "phone and email: only the phone matches, so a new client",
			by:   []intake.Field{intake.FieldPhone, intake.FieldEmail}, match: intake.MatchAll,
			ev: chat("c4", annaPhone, "other@example.com"),
			want: intake.Result{Rule: "default", ContactID: new1, ContactCreated: true, LeadID: new2, LeadCreated: true, Responsible: first,
				NoteOn: &intake.EntityRef{Entity: crm.EntityLead, ID: new2}},
			wantCt: []sandbox.Contact{{ID: new1, Name: "Visitor c4", ResponsibleUserID: int64(first), Phones: []string{string(annaPhone)}, Emails: []string{"other@example.com"}, LeadIDs: []int64{new2}}},
			wantLd: []sandbox.Lead{{ID: new2, Name: "Jivo: Visitor c4", StatusID: sandbox.DefaultStatusID, PipelineID: sandbox.DefaultPipelineID, ResponsibleUserID: int64(first), ContactIDs: []int64{new1}}},
			noteOn: "leads/605",
		},
		{
			name: "INN from the visitor's description; no open deal, so a deal for the existing responsible",
			by:   []intake.Field{intake.FieldCustomField}, match: intake.MatchAny,
			ev: func() chatbridge.Event {
				ev := chat("c5", unknownPhone, "")
				ev.Visitor.Description = "ООО Стол, ИНН 7701234567"
				return ev
			}(),
			want: intake.Result{DuplicateBy: intake.FieldCustomField, ContactID: borisID, LeadID: new1, LeadCreated: true, Responsible: third,
				NoteOn: &intake.EntityRef{Entity: crm.EntityLead, ID: new1}},
			wantLd: []sandbox.Lead{{ID: new1, Name: "Jivo: Visitor c5", StatusID: sandbox.DefaultStatusID, PipelineID: sandbox.DefaultPipelineID, ResponsibleUserID: int64(third), ContactIDs: []int64{borisID}}},
			noteOn: "leads/604",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			cfg := config()
			cfg.Duplicates.By, cfg.Duplicates.Match = tt.by, tt.match
			cfg.Duplicates.CustomFieldID, cfg.Duplicates.CustomFieldName = r.innFieldID(t), "INN"
			cfg.Duplicates.CustomFieldPattern = `ИНН\s*(\d{10}|\d{12})`
			res := handle(t, r.engine(t, cfg), tt.ev)
			assert.Equal(t, tt.want, res)

			got := r.sb.Created()
			if tt.wantCt == nil {
				tt.wantCt = []sandbox.Contact{}
			}
			if tt.wantLd == nil {
				tt.wantLd = []sandbox.Lead{}
			}
			assert.Equal(t, tt.wantCt, withoutTimes(got.Contacts))
			assert.Equal(t, tt.wantLd, withoutLeadTimes(got.Leads))
			require.Len(t, got.Notes, 1)
			assert.Equal(t, tt.noteOn, got.Notes[0].EntityType+"/"+itoa(got.Notes[0].EntityID))
			assert.Contains(t, got.Notes[0].Params.Text, "Jivo: chat "+tt.ev.Chat.ID+" accepted (agent Bob #4410)")
		})
	}
}

// TestRoundRobin: new clients go in turn to the group's managers who take new clients and
// are at work when the chat comes, with the Rotation in memory and in Redis.
func TestRoundRobin(t *testing.T) {
	for _, tt := range []struct {
		name     string
		rotation func(t *testing.T) intake.Rotation
	}{
		{"memory", func(*testing.T) intake.Rotation { return intake.NewMemoryRotation() }},
		{"redis", func(t *testing.T) intake.Rotation { return intake.NewRedisRotation(redisClient(t), "") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			e := r.engine(t, config(), intake.WithRotation(tt.rotation(t)))
			var got []crm.UserID
			for i, phone := range []crm.Phone{"+79035550101", "+79035550102", "+79035550103", "+79035550104"} {
				res := handle(t, e, chat("rr"+itoa(int64(i)), phone, ""))
				assert.True(t, res.ContactCreated && res.LeadCreated)
				got = append(got, res.Responsible)
			}
			// The night manager is skipped; the fourth client starts the round again.
			assert.Equal(t, []crm.UserID{first, second, third, first}, got)
			var owners []int64
			for _, l := range r.sb.Created().Leads {
				owners = append(owners, l.ResponsibleUserID)
			}
			assert.Equal(t, []int64{int64(first), int64(second), int64(third), int64(first)}, owners)
		})
	}
}

// TestDistributionSkips: managers who do not take new clients are skipped; with nobody
// available the default responsible takes the client.
func TestDistributionSkips(t *testing.T) {
	r := newRig(t)
	ms := managers(t)
	ms[0].TakesNewClients = false // first keeps clients, gets no new ones
	cfg := config()
	cfg.DefaultResponsible = nights
	cfg.Groups = append(cfg.Groups, intake.Group{Name: "night", Managers: []crm.UserID{nights, first}})
	cfg.Rules = []intake.Rule{{Name: "night shift page", When: intake.When{Page: []string{"/night"}}, Target: intake.Target{Action: intake.ActionContactAndDeal, Group: "night"}}}
	e, err := intake.New(cfg, r.client, r.state, intake.WithManagers(ms))
	require.NoError(t, err)

	assert.Equal(t, second, handle(t, e, chat("d1", "+79035550101", "")).Responsible)
	ev := chat("d2", "+79035550102", "")
	ev.Origin.PageURL = "https://shop.example/night/sale"
	res := handle(t, e, ev)
	assert.Equal(t, "night shift page", res.Rule)
	assert.Equal(t, nights, res.Responsible, "nobody of the night group is available at 10:00: the default responsible")
}

// TestRules: the first matching rule decides: pipeline, stage, tags, contact only, ignore.
func TestRules(t *testing.T) {
	cfg := config()
	cfg.Rules = []intake.Rule{
		{Name: "spam", When: intake.When{UTMSource: []string{"spam*"}}, Target: intake.Target{Action: intake.ActionIgnore}},
		{Name: "newsletter", When: intake.When{Form: []string{intake.FormOffline}, Page: []string{"*/subscribe*"}}, Target: intake.Target{Action: intake.ActionContactOnly}},
		{Name: "ads in Moscow", When: intake.When{UTMMedium: []string{"CPC"}, Location: []string{"moscow"}, Source: []string{"jivo"}},
			Target: intake.Target{Action: intake.ActionContactAndDeal, PipelineID: 7001, StatusID: 7101, Tags: []string{"jivo", "ads"}}},
		{Name: "partner number", When: intake.When{ExternalNumber: []string{"+7 (495) 000-00-01"}}, Target: intake.Target{Action: intake.ActionContactAndDeal, PipelineID: 8001}},
	}
	offline := func(page string) chatbridge.Event {
		return chatbridge.Event{ID: "jivo:offline:77", Platform: chatbridge.Jivo, Kind: chatbridge.EventOfflineMessage, At: t0,
			Chat: chatbridge.ChatRef{Platform: chatbridge.Jivo}, Visitor: &chatbridge.Visitor{Name: "Reader", Email: "reader@example.com"},
			Origin: &chatbridge.Origin{PageURL: page}, Message: &chatbridge.Message{Text: "subscribe me", Inbound: true}}
	}
	tests := []struct {
		name     string
		ev       chatbridge.Event
		rule     string
		skipped  bool
		contacts int
		leads    []sandbox.Lead
		noteOn   string
	}{
		{name: "ignored", ev: func() chatbridge.Event {
			e := chat("r1", "+79035550101", "")
			e.Origin.UTM.Source = "spammer"
			return e
		}(), rule: "spam", skipped: true},
		{name: "contact only for the newsletter form", ev: offline("https://shop.example/subscribe?x=1"), rule: "newsletter", contacts: 1, noteOn: "contacts/604"},
		{name: "an offline message from another page is a deal", ev: offline("https://shop.example/contacts"), rule: "default", contacts: 1,
			leads: []sandbox.Lead{{ID: new2, Name: "Jivo: Reader", PipelineID: sandbox.DefaultPipelineID, StatusID: sandbox.DefaultStatusID, ResponsibleUserID: int64(first), ContactIDs: []int64{new1}}}, noteOn: "leads/605"},
		{name: "utm and location", ev: chat("r2", "+79035550102", ""), rule: "ads in Moscow", contacts: 1,
			leads: []sandbox.Lead{{ID: new2, Name: "Jivo: Visitor r2", PipelineID: 7001, StatusID: 7101, ResponsibleUserID: int64(first), ContactIDs: []int64{new1}, Tags: []string{"jivo", "ads"}}}, noteOn: "leads/605"},
		{name: "external number by its digits", ev: func() chatbridge.Event {
			e := chat("r3", "+79035550103", "")
			e.Origin.UTM, e.Visitor.Number = chatbridge.UTM{}, "74950000001"
			return e
		}(), rule: "partner number", contacts: 1,
			leads: []sandbox.Lead{{ID: new2, Name: "Jivo: Visitor r3", PipelineID: 8001, StatusID: sandbox.DefaultStatusID, ResponsibleUserID: int64(first), ContactIDs: []int64{new1}}}, noteOn: "leads/605"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			res := handle(t, r.engine(t, cfg), tt.ev)
			assert.Equal(t, tt.rule, res.Rule)
			assert.Equal(t, tt.skipped, res.Skipped != "", res.Skipped)
			got := r.sb.Created()
			assert.Len(t, got.Contacts, tt.contacts)
			if tt.leads == nil {
				tt.leads = []sandbox.Lead{}
			}
			assert.Equal(t, tt.leads, withoutLeadTimes(got.Leads))
			if tt.noteOn == "" {
				assert.Empty(t, got.Notes)
				return
			}
			require.Len(t, got.Notes, 1)
			assert.Equal(t, tt.noteOn, got.Notes[0].EntityType+"/"+itoa(got.Notes[0].EntityID))
		})
	}
}

// TestRedelivery: the same event twice, or after a crash, creates nothing twice; the
// chat's chat_finished adds its summary to the deal the chat created.
func TestRedelivery(t *testing.T) {
	r := newRig(t)
	e := r.engine(t, config())
	ev := chat("x1", "+79035550101", "new@example.com")
	first := handle(t, e, ev)
	again := handle(t, e, ev)
	assert.False(t, first.Repeated)
	assert.True(t, again.Repeated)
	assert.Equal(t, first.LeadID, again.LeadID)
	assert.False(t, again.ContactCreated || again.LeadCreated)

	// A second engine on the same state (another instance, or after a restart).
	twin := r.engine(t, config())
	handle(t, twin, ev)

	fin := ev
	fin.ID, fin.Kind = "jivo:chat_finished:x1", chatbridge.EventChatFinished
	fin.Message = &chatbridge.Message{Text: "thanks, bye", Inbound: true}
	res := handle(t, e, fin)
	handle(t, twin, fin)
	assert.Equal(t, first.LeadID, res.LeadID)

	got := r.sb.Created()
	assert.Len(t, got.Contacts, 1)
	assert.Len(t, got.Leads, 1)
	notes := got.NotesOn("leads", first.LeadID)
	require.Len(t, notes, 2)
	assert.Contains(t, notes[0].Params.Text, "chat x1 accepted")
	assert.Contains(t, notes[1].Params.Text, "chat x1 finished")
	assert.Contains(t, notes[1].Params.Text, "Message: thanks, bye")

	// A chat_finished of a chat nothing was created for does nothing.
	other := chat("x2", "+79035550102", "")
	other.Kind = chatbridge.EventChatFinished
	assert.NotEmpty(t, handle(t, e, other).Skipped)
}

// TestUnsortedMode: a new client waits in Unsorted; the Jivo agent who accepts the chat
// accepts the entry as their CRM user; an entry a manager took in amoCRM first stays theirs.
func TestUnsortedMode(t *testing.T) {
	agents := map[string]crm.UserID{"4410": third}
	chatUsers := intake.WithChatUsers(func(id string) (crm.UserID, bool) { u, ok := agents[id]; return u, ok })
	cfg := config()
	cfg.Mode = intake.ModeUnsorted

	t.Run("accepted by the agent's CRM user", func(t *testing.T) {
		r := newRig(t)
		res := handle(t, r.engine(t, cfg, chatUsers), chat("u1", "+79035550101", "u1@example.com"))
		assert.True(t, res.Accepted)
		assert.Equal(t, third, res.Responsible)
		got := r.sb.Created()
		require.Len(t, got.Unsorted, 1)
		u := got.Unsorted[0]
		assert.Equal(t, "forms", u.Category)
		assert.Equal(t, sandbox.UnsortedAccepted, u.Status)
		assert.Equal(t, "https://shop.example/sofas", u.Form.FormPage)
		require.Len(t, got.Leads, 1)
		assert.Equal(t, int64(third), got.Leads[0].ResponsibleUserID)
		require.Len(t, got.Contacts, 1)
		assert.Equal(t, []string{"u1@example.com"}, got.Contacts[0].Emails)
		assert.Len(t, got.NotesOn("leads", got.Leads[0].ID), 1)
	})
	t.Run("a manager accepted it in amoCRM first", func(t *testing.T) {
		r := newRig(t)
		ev := chat("u2", "+79035550102", "")
		ev.ChatUser = "9999" // not mapped: the entry waits
		e := r.engine(t, cfg, chatUsers)
		res := handle(t, e, ev)
		assert.False(t, res.Accepted)
		require.NotEmpty(t, res.UnsortedUID)
		_, err := r.sb.AcceptUnsorted(context.Background(), res.UnsortedUID, int64(second), 0)
		require.NoError(t, err)

		ev.ChatUser = "4410" // the chat is accepted again, now by a mapped agent
		res = handle(t, e, ev)
		assert.False(t, res.Accepted)
		got := r.sb.Created()
		require.Len(t, got.Unsorted, 1)
		assert.Equal(t, int64(second), got.Unsorted[0].DecidedBy)
		require.Len(t, got.Leads, 1)
		assert.Equal(t, int64(second), got.Leads[0].ResponsibleUserID)
	})
	t.Run("a returning client skips Unsorted", func(t *testing.T) {
		r := newRig(t)
		res := handle(t, r.engine(t, cfg, chatUsers), chat("u3", annaPhone, ""))
		assert.Equal(t, second, res.Responsible)
		assert.Empty(t, r.sb.Created().Unsorted)
	})
}

// TestRejectedIsPermanent: a write amoCRM refuses (a manager who is not an account user)
// is a permanent error, so the queue dead-letters it instead of retrying.
func TestRejectedIsPermanent(t *testing.T) {
	r := newRig(t)
	cfg := config()
	cfg.Groups = []intake.Group{{Name: "sales", Managers: []crm.UserID{99}}}
	e, err := intake.New(cfg, r.client, r.state, intake.WithManagers([]intake.Manager{{User: 99, TakesNewClients: true}}))
	require.NoError(t, err)
	_, err = e.Handle(context.Background(), chat("p1", "+79035550101", ""))
	require.Error(t, err)
	assert.ErrorIs(t, err, scenarios.ErrPermanent)
	assert.ErrorIs(t, err, crm.ErrRejected)
	assert.Contains(t, err.Error(), "chat jivo:p1")
}

// TestReturningClientIsRoutingsClient: among contacts sharing the visitor's phone the client
// is the one routing rings for (the most recently updated with an open deal, not the most
// recently updated), and the owner follows routing's precedence (the open deal's
// responsible before the contact's), so a chat and a call of one client meet on one card.
func TestReturningClientIsRoutingsClient(t *testing.T) {
	const phone = crm.Phone("+79167778899")
	sd := seed()
	sd.Contacts = append(sd.Contacts,
		sandbox.Contact{ID: 510, Name: "Old card", ResponsibleUserID: int64(first), Phones: []string{string(phone)}, LeadIDs: []int64{611}, UpdatedAt: 1000},
		sandbox.Contact{ID: 511, Name: "Newer card", ResponsibleUserID: int64(second), Phones: []string{string(phone)}, UpdatedAt: 2000})
	sd.Leads = append(sd.Leads, sandbox.Lead{ID: 611, Name: "Open deal", StatusID: 5101, PipelineID: 5001, ResponsibleUserID: int64(third)})
	sb := sandbox.New(sd, sandbox.WithRateLimit(-1))
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	t.Cleanup(sb.Close)
	c, err := amocrm.New(amocrm.Options{BaseURL: ts.URL, Token: sandbox.DefaultToken, RateLimit: 1000})
	require.NoError(t, err)
	r := &rig{sb: sb, client: c, state: events.NewMemoryState()}

	res := handle(t, r.engine(t, config()), chat("k1", phone, ""))
	assert.Equal(t, intake.Result{DuplicateBy: intake.FieldPhone, ContactID: 510, LeadID: 611, Responsible: third,
		NoteOn: &intake.EntityRef{Entity: crm.EntityLead, ID: 611}}, res)

	dec := routing.LiveResolver(c, "RU")
	cl, _, err := dec.ResolveClient(context.Background(), phone, nil)
	require.NoError(t, err)
	assert.Equal(t, []any{cl.ContactID, cl.DealID, cl.Owner}, []any{res.ContactID, res.LeadID, res.Responsible}, "routing's resolution of the number")
}
