package chatbridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/scenarios/scenariotest"
)

// CRM to chat: a person gives the deal to Bob; every chat of the deal's client, on both
// platforms, goes to Bob's chat user. ChatApp reports crmlink's own reassignments back
// (the echo), and they change nothing.
func TestDealResponsibleReachesEveryChatOfTheClient(t *testing.T) {
	h := newHarness(t)
	require.Equal(t, everyChat(annWazzup, annChatApp), h.clientChats())

	h.personInCRM(crm.EntityLead, openLead, bob)
	res := h.pump()

	assert.Equal(t, everyChat(bobWazzup, bobChatApp), h.clientChats())
	assert.Equal(t, []chatbridge.Outcome{chatbridge.OutcomeSynced, chatbridge.OutcomeEcho, chatbridge.OutcomeEcho}, outcomes(res),
		"the deal change, then ChatApp reporting crmlink's two reassignments")
	assert.Equal(t, 3, h.chats.APIAssignments(), "one write per chat")
	assert.Empty(t, h.crm.Writes(), "nothing goes back to the CRM")
	assert.Equal(t, map[string]string{"wazzup:502": carolWazzup, "chatapp:1001/grWhatsApp/79035550000": carolChatApp},
		h.chats.Responsible(otherPhone), "another client's chats are not touched")
	// Wazzup's contact was read and written back whole.
	c, ok := h.chats.WazzupContact(wazzupChat)
	require.True(t, ok)
	assert.Equal(t, "Anna Petrova", c.Name)
	assert.Equal(t, clientDigits, c.ContactData[0].ChatID)

	// The same webhook delivered again writes nothing.
	h.queueCRM(crm.ResponsibleChange{Entity: crm.EntityLead, ID: openLead, Responsible: bob, ModifiedBy: person, At: t0})
	assert.Equal(t, []chatbridge.Outcome{chatbridge.OutcomeInSync}, outcomes(h.pump()))
	assert.Equal(t, 3, h.chats.APIAssignments())
}

// With contact and deal both selected the most recently changed one wins, by the change's
// time, whatever order the webhooks arrive in.
func TestLaterChangeWinsBetweenContactAndDeal(t *testing.T) {
	type change struct {
		entity crm.EntityType
		id     int64
		user   crm.UserID
		at     time.Duration // after t0
	}
	deal := func(u crm.UserID, at time.Duration) change { return change{crm.EntityLead, openLead, u, at} }
	contact := func(u crm.UserID, at time.Duration) change { return change{crm.EntityContact, contactID, u, at} }
	tests := []struct {
		name     string
		arrivals []change
		wantWz   string
		wantCA   string
		outcomes []chatbridge.Outcome
	}{
		{
			name:     "contact then deal",
			arrivals: []change{contact(carol, 5*time.Second), deal(bob, 10*time.Second)},
			wantWz:   bobWazzup, wantCA: bobChatApp,
			outcomes: []chatbridge.Outcome{chatbridge.OutcomeSynced, chatbridge.OutcomeSynced},
		},
		{
			name:     "deal then a late contact webhook",
			arrivals: []change{deal(bob, 10*time.Second), contact(carol, 5*time.Second)},
			wantWz:   bobWazzup, wantCA: bobChatApp,
			outcomes: []chatbridge.Outcome{chatbridge.OutcomeSynced, chatbridge.OutcomeStale},
		},
		{
			name:     "deal then contact",
			arrivals: []change{deal(bob, 5*time.Second), contact(carol, 10*time.Second)},
			wantWz:   carolWazzup, wantCA: carolChatApp,
			outcomes: []chatbridge.Outcome{chatbridge.OutcomeSynced, chatbridge.OutcomeSynced},
		},
		{
			name:     "same second: the later arrival wins",
			arrivals: []change{deal(bob, 5*time.Second), contact(carol, 5*time.Second)},
			wantWz:   carolWazzup, wantCA: carolChatApp,
			outcomes: []chatbridge.Outcome{chatbridge.OutcomeSynced, chatbridge.OutcomeSynced},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, withConfig(func(c *chatbridge.Config) {
				c.CRMToChat.Entities = []crm.EntityType{crm.EntityContact, "deal"}
			}))
			h.clock.Advance(20 * time.Second) // the webhooks arrive after both changes
			var got []chatbridge.Outcome
			for _, a := range tt.arrivals {
				res, err := h.sync.HandleCRMChange(context.Background(), crm.ResponsibleChange{
					Entity: a.entity, ID: a.id, Responsible: a.user, ModifiedBy: person, At: t0.Add(a.at)})
				require.NoError(t, err)
				got = append(got, res.Outcome)
			}
			assert.Equal(t, tt.outcomes, got)
			assert.Equal(t, everyChat(tt.wantWz, tt.wantCA), h.clientChats())
		})
	}
}

func TestCRMChangesTheSyncDoesNotFollow(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*chatbridge.Config)
		change crm.ResponsibleChange
		want   chatbridge.Outcome
	}{
		{"company not selected", nil, crm.ResponsibleChange{Entity: crm.EntityCompany, ID: companyID, Responsible: bob, ModifiedBy: person}, chatbridge.OutcomeIgnored},
		{"direction off", func(c *chatbridge.Config) { c.CRMToChat.Enabled = false },
			crm.ResponsibleChange{Entity: crm.EntityLead, ID: openLead, Responsible: bob, ModifiedBy: person}, chatbridge.OutcomeIgnored},
		{"made by crmlink's user", nil, crm.ResponsibleChange{Entity: crm.EntityLead, ID: openLead, Responsible: bob, ModifiedBy: integrationUser}, chatbridge.OutcomeEcho},
		{"a lead nobody is on", nil, crm.ResponsibleChange{Entity: crm.EntityLead, ID: 999, Responsible: bob, ModifiedBy: person}, chatbridge.OutcomeNoClient},
		{"a user with no chat user", nil, crm.ResponsibleChange{Entity: crm.EntityLead, ID: openLead, Responsible: 77, ModifiedBy: person}, chatbridge.OutcomeUnmapped},
		{"no responsible", nil, crm.ResponsibleChange{Entity: crm.EntityLead, ID: openLead, ModifiedBy: person}, chatbridge.OutcomeIgnored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, withConfig(func(c *chatbridge.Config) {
				if tt.cfg != nil {
					tt.cfg(c)
				}
			}))
			res, err := h.sync.HandleCRMChange(context.Background(), tt.change)
			require.NoError(t, err)
			assert.Equal(t, tt.want, res.Outcome, res.Reason)
			assert.NotEmpty(t, res.Reason)
			assert.Equal(t, everyChat(annWazzup, annChatApp), h.clientChats())
			assert.Zero(t, h.chats.APIAssignments())
		})
	}
}

// A company change reaches the chats of the company's contacts when company is selected.
func TestCompanyChangeReachesItsContactsChats(t *testing.T) {
	h := newHarness(t, withConfig(func(c *chatbridge.Config) { c.CRMToChat.Entities = []crm.EntityType{crm.EntityCompany} }))
	h.personInCRM(crm.EntityCompany, companyID, carol)
	res := h.pump()
	require.NotEmpty(t, res)
	assert.Equal(t, chatbridge.OutcomeSynced, res[0].Outcome)
	assert.Equal(t, everyChat(carolWazzup, carolChatApp), h.clientChats())
}

// Chat to CRM: a ChatApp employee gives the chat to Bob; the contact and its open deal
// (the selected entities) go to Bob, the closed deal keeps its history, and the webhooks
// of crmlink's own writes are not synced back, whichever way they are recognised.
func TestChatAssignmentReachesEverySelectedEntity(t *testing.T) {
	tests := []struct {
		name     string
		echoBy   crm.UserID // modified_user_id on the webhooks of crmlink's writes
		entities []crm.EntityType
		want     map[crm.EntityType]int64
	}{
		{name: "echo recognised by modified_user_id", echoBy: integrationUser,
			entities: []crm.EntityType{crm.EntityLead, crm.EntityContact}},
		{name: "echo recognised by the guard mark", echoBy: 0,
			entities: []crm.EntityType{crm.EntityLead, crm.EntityContact}},
		{name: "echo recognised by the guard mark, written by an admin token", echoBy: 1,
			entities: []crm.EntityType{crm.EntityLead, crm.EntityContact}},
		{name: "company too", echoBy: integrationUser,
			entities: []crm.EntityType{crm.EntityLead, crm.EntityContact, crm.EntityCompany}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, withConfig(func(c *chatbridge.Config) { c.ChatToCRM.Entities, c.CRMToChat.Entities = tt.entities, tt.entities }))
			h.crm.echoBy = tt.echoBy
			h.personInChatApp(chatAppChat1, bobChatApp)
			res := h.pump()

			assert.Equal(t, bob, h.crm.responsible(t, crm.EntityContact, contactID))
			assert.Equal(t, bob, h.crm.responsible(t, crm.EntityLead, openLead))
			assert.Equal(t, carol, h.crm.responsible(t, crm.EntityLead, closedLead), "a closed deal keeps its responsible")
			wantWrites := []scenariotest.ResponsibleSet{{Entity: crm.EntityLead, ID: openLead, User: bob}, {Entity: crm.EntityContact, ID: contactID, User: bob}}
			companyWanted := len(tt.entities) == 3
			if companyWanted {
				wantWrites = append(wantWrites, scenariotest.ResponsibleSet{Entity: crm.EntityCompany, ID: companyID, User: bob})
				assert.Equal(t, bob, h.crm.responsible(t, crm.EntityCompany, companyID))
			} else {
				assert.Equal(t, ann, h.crm.responsible(t, crm.EntityCompany, companyID))
			}
			assert.Equal(t, wantWrites, h.crm.Writes(), "one write per selected entity")

			want := []chatbridge.Outcome{chatbridge.OutcomeSynced}
			for range wantWrites {
				want = append(want, chatbridge.OutcomeEcho)
			}
			assert.Equal(t, want, outcomes(res), "the chat change, then the webhooks of crmlink's writes")
			assert.Equal(t, map[string]string{"wazzup:" + wazzupChat: annWazzup, "chatapp:" + chatAppChat1: bobChatApp, "chatapp:" + chatAppChat2: annChatApp},
				h.clientChats(), "no change echoes back into the chats")
			assert.Zero(t, h.chats.APIAssignments())
			assert.Equal(t, carol, h.crm.responsible(t, crm.EntityLead, otherLead), "another client is not touched")
		})
	}
}

// Wazzup reports chat assignments as contact entities (and new clients as createContact);
// both reach the CRM.
func TestWazzupAssignmentsReachTheCRM(t *testing.T) {
	h := newHarness(t)
	_, err := h.chats.WazzupReassign(context.Background(), wazzupChat, carolWazzup)
	require.NoError(t, err)
	h.pump()
	assert.Equal(t, carol, h.crm.responsible(t, crm.EntityContact, contactID))
	assert.Equal(t, carol, h.crm.responsible(t, crm.EntityLead, openLead))

	// A chat of a number the CRM knows, given to Bob by Wazzup's distribution.
	h.clock.Advance(10 * time.Second)
	_, err = h.chats.WazzupNewClient(context.Background(), "whatsapp", clientDigits, "Anna", bobWazzup)
	require.NoError(t, err)
	res := h.pump()
	assert.Equal(t, chatbridge.OutcomeSynced, res[0].Outcome, res[0].Reason)
	assert.Equal(t, bob, h.crm.responsible(t, crm.EntityLead, openLead))

	// A number the CRM does not know: nothing to sync (lead creation is the rules' job).
	_, err = h.chats.WazzupNewClient(context.Background(), "whatsapp", "79990001122", "New", bobWazzup)
	require.NoError(t, err)
	res = h.pump()
	assert.Equal(t, []chatbridge.Outcome{chatbridge.OutcomeNoClient}, outcomes(res))
}

// The guard: crmlink's own change coming back within the window is ignored, and the
// mark only swallows that value: a person's different change is applied.
func TestGuardMarks(t *testing.T) {
	t.Run("our chat write echoed within the window", func(t *testing.T) {
		h := newHarness(t)
		h.personInCRM(crm.EntityLead, openLead, bob)
		h.pump()
		h.clock.Advance(4 * time.Second)
		res, err := h.sync.HandleChatEvent(context.Background(), assigned(chatAppChat1, bobChatApp, h.clock.Now()))
		require.NoError(t, err)
		assert.Equal(t, chatbridge.OutcomeEcho, res.Outcome)
	})
	t.Run("the same value after the window is a person's change", func(t *testing.T) {
		h := newHarness(t)
		h.personInCRM(crm.EntityLead, openLead, bob)
		h.pump()
		// Someone put the deal back on Ann without crmlink hearing of it; then, after the
		// window, a ChatApp employee confirms Bob: that is a change to apply.
		require.NoError(t, h.crm.apply(context.Background(), crm.EntityLead, openLead, ann))
		h.clock.Advance(chatbridge.DefaultGuardWindow)
		res, err := h.sync.HandleChatEvent(context.Background(), assigned(chatAppChat1, bobChatApp, h.clock.Now()))
		require.NoError(t, err)
		assert.Equal(t, chatbridge.OutcomeSynced, res.Outcome)
		assert.Equal(t, bob, h.crm.responsible(t, crm.EntityLead, openLead))
	})
	t.Run("our CRM write echoed without modified_user_id", func(t *testing.T) {
		h := newHarness(t)
		h.crm.echoBy = 0
		h.personInChatApp(chatAppChat1, bobChatApp)
		res := h.pump()
		assert.Equal(t, []chatbridge.Outcome{chatbridge.OutcomeSynced, chatbridge.OutcomeEcho, chatbridge.OutcomeEcho}, outcomes(res))
	})
}

// assigned is a ChatApp chatResponsible event.
func assigned(ref, user string, at time.Time) chatbridge.Event {
	return chatbridge.Event{ID: "evt-" + ref + user + at.String(), Platform: chatbridge.ChatApp, Kind: chatbridge.EventResponsibleAssigned, At: at,
		Chat:  chatbridge.ChatRef{Platform: chatbridge.ChatApp, ID: ref, Responsible: user},
		Phone: clientPhone, ChatUser: user}
}

// Two people keep changing the responsible, 2 s apart, one in the CRM and one in ChatApp:
// every change is applied once, the sides agree on the last one, nothing loops, and the
// writes are counted: a change writes each target (3 chats, or the deal and the contact)
// at most once, and only the targets that disagree.
func TestAlternatingChangesSettleOnTheLast(t *testing.T) {
	h := newHarness(t)
	steps := []struct {
		inCRM bool
		user  crm.UserID
	}{{true, bob}, {false, carol}, {true, bob}, {false, carol}, {true, ann}}
	chatUser := map[crm.UserID]string{ann: annChatApp, bob: bobChatApp, carol: carolChatApp}
	for i, s := range steps {
		if i > 0 {
			h.clock.Advance(2 * time.Second)
		}
		if s.inCRM {
			h.personInCRM(crm.EntityLead, openLead, s.user)
		} else {
			h.personInChatApp(chatAppChat1, chatUser[s.user])
		}
		h.pump()
	}
	assert.Equal(t, everyChat(annWazzup, annChatApp), h.clientChats(), "the chats follow the last change")
	assert.Equal(t, ann, h.crm.responsible(t, crm.EntityLead, openLead))

	chatWrites, crmWrites := h.chats.APIAssignments(), len(h.crm.Writes())
	// 1 (deal: Bob): the 3 chats. 2 (chat: Carol): deal and contact. 3 (deal: Bob): only
	// the chat the person changed, the others are Bob's already. 4 (chat: Carol): the deal;
	// the contact is Carol's since 2. 5 (deal: Ann): the 3 chats.
	assert.Equal(t, 3+1+3, chatWrites)
	assert.Equal(t, 2+1, crmWrites)
	assert.LessOrEqual(t, chatWrites+crmWrites, len(steps)*3, "at most one write per target per change")
	// The contact follows chat changes only (deal changes in the CRM do not touch it).
	assert.Equal(t, carol, h.crm.responsible(t, crm.EntityContact, contactID))
}

// Two people change the responsible within the guard window: the later change stands,
// even when it sets a value crmlink itself wrote a moment ago.
func TestChangesWithinTheWindowResolveToTheLatest(t *testing.T) {
	h := newHarness(t)
	h.personInCRM(crm.EntityLead, openLead, bob) // chats -> Bob (crmlink's marks: Bob)
	h.pump()
	h.clock.Advance(time.Second)
	h.personInChatApp(chatAppChat1, carolChatApp) // a person: Carol
	h.pump()
	h.clock.Advance(time.Second)
	h.personInChatApp(chatAppChat1, bobChatApp) // a person, back to Bob: not an echo
	h.pump()
	assert.Equal(t, bob, h.crm.responsible(t, crm.EntityLead, openLead))
	assert.Equal(t, bob, h.crm.responsible(t, crm.EntityContact, contactID))
	assert.Equal(t, bobChatApp, h.clientChats()["chatapp:"+chatAppChat1])
}

// A dialog opening takes the responsible of the selected entity that changed last.
func TestDialogOpenedTakesTheLatestChangedEntity(t *testing.T) {
	t.Run("by the cards' update times", func(t *testing.T) {
		h := newHarness(t, withConfig(func(c *chatbridge.Config) { c.CRMToChat.Entities = []crm.EntityType{crm.EntityContact, crm.EntityLead} }))
		// The open deal (updated a day ago) is more recent than the contact (two days ago).
		require.NoError(t, h.crm.CRM.SetResponsible(context.Background(), crm.EntityLead, openLead, carol))
		_, err := h.chats.ChatAppMessage(context.Background(), chatAppChat2, "m1", "hello", true, "")
		require.NoError(t, err)
		res := h.pump()
		require.NotEmpty(t, res)
		assert.Equal(t, chatbridge.OutcomeSynced, res[0].Outcome, res[0].Reason)
		assert.Equal(t, map[string]string{"wazzup:" + wazzupChat: annWazzup, "chatapp:" + chatAppChat1: carolChatApp, "chatapp:" + chatAppChat2: carolChatApp},
			h.clientChats(), "the platform the dialog opened on follows")

		// A second message in the open dialog does not sync again.
		h.clock.Advance(time.Minute)
		require.NoError(t, h.crm.CRM.SetResponsible(context.Background(), crm.EntityLead, openLead, bob))
		_, err = h.chats.ChatAppMessage(context.Background(), chatAppChat2, "m2", "still there?", true, "")
		require.NoError(t, err)
		assert.Equal(t, []chatbridge.Outcome{chatbridge.OutcomeIgnored}, outcomes(h.pump()))
		// After an hour of quiet the next message opens the dialog again.
		h.clock.Advance(chatbridge.DefaultDialogIdle)
		_, err = h.chats.ChatAppMessage(context.Background(), chatAppChat2, "m3", "hello again", true, "")
		require.NoError(t, err)
		res = h.pump()
		assert.Equal(t, chatbridge.OutcomeSynced, res[0].Outcome)
		assert.Equal(t, bobChatApp, h.clientChats()["chatapp:"+chatAppChat2])
	})
	t.Run("by the last responsible change crmlink saw", func(t *testing.T) {
		h := newHarness(t, withConfig(func(c *chatbridge.Config) { c.CRMToChat.Entities = []crm.EntityType{crm.EntityLead, crm.EntityContact} }))
		h.clock.Advance(time.Hour)
		h.personInCRM(crm.EntityContact, contactID, carol) // the contact changed last
		h.pump()
		// ChatApp sets the chats back to Ann behind crmlink's back; a dialog opens.
		h.chats.AddChatAppChat(chatAppChatState(1001, annChatApp))
		_, err := h.chats.ChatAppCreateChat(context.Background(), chatAppChatState(1002, annChatApp))
		require.NoError(t, err)
		res := h.pump()
		require.NotEmpty(t, res)
		assert.Equal(t, chatbridge.OutcomeSynced, res[0].Outcome)
		assert.Equal(t, carolChatApp, h.clientChats()["chatapp:"+chatAppChat2])
	})
}

func chatAppChatState(license int, responsible string) sandboxChat {
	return sandboxChat{License: itoa(license), Messenger: "grWhatsApp", ID: clientDigits, Phone: clientDigits, Name: "Anna", Responsible: responsible}
}

func TestChatEventsTheSyncDoesNotFollow(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		e    chatbridge.Event
		want chatbridge.Outcome
	}{
		{"jivo is not synced", chatbridge.Event{ID: "j", Platform: chatbridge.Jivo, Kind: chatbridge.EventChatAccepted, Phone: clientPhone, ChatUser: "1"}, chatbridge.OutcomeIgnored},
		{"an employee's message", chatbridge.Event{ID: "m", Platform: chatbridge.ChatApp, Kind: chatbridge.EventMessage, Phone: clientPhone,
			Message: &chatbridge.Message{Inbound: false}}, chatbridge.OutcomeIgnored},
		{"unmapped chat user", assigned(chatAppChat1, "404", t0), chatbridge.OutcomeUnmapped},
		{"no phone", func() chatbridge.Event { e := assigned(chatAppChat1, bobChatApp, t0); e.Phone = ""; return e }(), chatbridge.OutcomeNoClient},
		{"responsible removed", assigned(chatAppChat1, "", t0), chatbridge.OutcomeIgnored},
		{"status update", chatbridge.Event{ID: "s", Platform: chatbridge.Wazzup, Kind: chatbridge.EventChatFinished}, chatbridge.OutcomeIgnored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := h.sync.HandleChatEvent(context.Background(), tt.e)
			require.NoError(t, err)
			assert.Equal(t, tt.want, res.Outcome, res.Reason)
		})
	}
	assert.Empty(t, h.crm.Writes())
}

// chat.max_writes bounds what one change may write.
func TestMaxWrites(t *testing.T) {
	h := newHarness(t, withConfig(func(c *chatbridge.Config) { c.MaxWrites = 2 }))
	res, err := h.sync.HandleCRMChange(context.Background(), crm.ResponsibleChange{Entity: crm.EntityLead, ID: openLead, Responsible: bob, ModifiedBy: person, At: t0})
	require.NoError(t, err)
	assert.True(t, res.Truncated)
	assert.Len(t, res.Writes, 2)
	assert.Equal(t, 2, h.chats.APIAssignments())
}

// A failing platform fails the event (to be retried) without stopping the other platform;
// the retry finishes the job without writing twice.
func TestPlatformFailureIsRetried(t *testing.T) {
	h := newHarness(t)
	require.NoError(t, h.chats.Fail("POST", "/v3/contacts", 503, 1))
	ch := crm.ResponsibleChange{Entity: crm.EntityLead, ID: openLead, Responsible: bob, ModifiedBy: person, At: t0}
	res, err := h.sync.HandleCRMChange(context.Background(), ch)
	require.ErrorIs(t, err, chatbridge.ErrUnavailable)
	assert.Len(t, res.Writes, 2, "the ChatApp chats were written")
	h.pump() // ChatApp's echoes

	res, err = h.sync.HandleCRMChange(context.Background(), ch)
	require.NoError(t, err)
	assert.Equal(t, []chatbridge.Write{{Target: "chat:wazzup:" + wazzupChat, Value: bobWazzup}}, res.Writes)
	assert.Equal(t, everyChat(bobWazzup, bobChatApp), h.clientChats())
}

// Two crmlink instances sharing a Redis guard: the echo of one instance's write is
// recognised by the other.
func TestInstancesShareTheGuardThroughRedis(t *testing.T) {
	clk := &testClock{now: t0}
	guard := chatbridge.NewRedisGuard(redisClient(t), "", clk.Now)
	h := newHarness(t, withGuard(guard, clk))
	h.crm.echoBy = 0 // only the marks tell crmlink's writes
	other := h.newSync(t, testConfig("http://unused.invalid"))

	h.personInChatApp(chatAppChat1, bobChatApp)
	h.mu.Lock()
	events := h.pendingHub
	h.pendingHub = nil
	h.mu.Unlock()
	require.Len(t, events, 1)
	res, err := h.sync.HandleChatEvent(context.Background(), events[0])
	require.NoError(t, err)
	require.Equal(t, chatbridge.OutcomeSynced, res.Outcome)

	h.mu.Lock()
	echoes := h.pendingCRM
	h.pendingCRM = nil
	h.mu.Unlock()
	require.Len(t, echoes, 2)
	for _, e := range echoes {
		res, err := other.HandleCRMChange(context.Background(), e)
		require.NoError(t, err)
		assert.Equal(t, chatbridge.OutcomeEcho, res.Outcome, "instance two recognises instance one's write")
	}
}

// Chat and CRM events round-trip through the queue's JSON to the Sync, each decoded once by
// the dispatcher; garbage is a permanent failure.
func TestHandleQueueEvents(t *testing.T) {
	h := newHarness(t)
	d := events.NewDispatcher(zerolog.Nop())
	events.On(d, events.CRMChanges, func(ctx context.Context, c events.CRMChange) error {
		_, err := h.sync.HandleCRMChange(ctx, crm.ResponsibleChange(c))
		return err
	})
	events.On(d, chatbridge.ChatEvents, func(ctx context.Context, e chatbridge.Event) error {
		_, err := h.sync.HandleChatEvent(ctx, e)
		return err
	})
	q, err := events.CRMChanges.Encode(events.CRMChange{Entity: crm.EntityLead, ID: openLead, Responsible: bob, ModifiedBy: person, At: t0})
	require.NoError(t, err)
	require.NoError(t, d.Handle(context.Background(), q))
	assert.Equal(t, everyChat(bobWazzup, bobChatApp), h.clientChats())

	h.clock.Advance(10 * time.Second)
	e := assigned(chatAppChat1, carolChatApp, h.clock.Now())
	q, err = e.QueueEvent()
	require.NoError(t, err)
	require.NoError(t, d.Handle(context.Background(), q))
	assert.Equal(t, carol, h.crm.responsible(t, crm.EntityLead, openLead))

	for _, bad := range []events.Envelope{
		{ID: "x", Kind: events.KindChat, Payload: []byte(`{`)},
		{ID: "y", Kind: events.KindCRMChange, Payload: []byte(`{"entity":"lead"}`)},
		{ID: "z", Kind: "call_outcome", Payload: []byte(`{}`)},
	} {
		err := d.Handle(context.Background(), bad)
		assert.Equal(t, events.DeadLetter, events.Classify(err), "%s: %v", bad.ID, err)
	}
}

func TestNewSyncRefusesAnInvalidConfig(t *testing.T) {
	cfg := testConfig("http://sandbox.invalid")
	cfg.Users = append(cfg.Users, chatbridge.UserConfig{CRMUserID: 14, ChatApp: bobChatApp})
	_, err := chatbridge.NewSync(cfg, scenariotest.New(), scenariotest.New(), chatbridge.NewMemoryGuard(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `chat.users[3].chatapp: is "8", the chatapp user already mapped to CRM user 12`)
}
