package chat

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/testrig"
)

// An amoCRM "responsible changed" webhook reaches the Wazzup write with the change
// encoded once (when the webhook is queued) and decoded once (when the dispatcher hands it
// to the chat sync): the CRM change type's Check runs on exactly those two passes.
func TestResponsibleChangeIsEncodedAndDecodedOnce(t *testing.T) {
	var passes atomic.Int32
	check := events.CRMChanges.Check
	events.CRMChanges.Check = func(c events.CRMChange) error { passes.Add(1); return check(c) }
	t.Cleanup(func() { events.CRMChanges.Check = check }) // after the stack's own clean-up
	s := startStack(t)

	s.personSets(t, "lead", openDeal, bob)
	testrig.WaitFor(t, 5*time.Second, "the client's chats given to Bob", func() bool {
		return equalMaps(s.chatsOf(clientPhone), allChats(bobWazzup, bobChatApp))
	})
	waitQueueIdle(t, s)
	require.Equal(t, 1, s.chats.Requests("POST /v3/contacts"), "one Wazzup write")
	require.Equal(t, int32(2), passes.Load(), "passes through the CRM change's codec: one encode, one decode")
}

// A Wazzup reassignment reaches amoCRM with the chat event encoded once and decoded once
// (its order key, the client's phone, travels beside it), and so do amoCRM's two reports
// of crmlink's writes, which the sync recognises as its own.
func TestChatEventIsEncodedAndDecodedOnce(t *testing.T) {
	var chatPasses, crmPasses atomic.Int32
	chatCheck, crmCheck := chatbridge.ChatEvents.Check, events.CRMChanges.Check
	chatbridge.ChatEvents.Check = func(e chatbridge.Event) error { chatPasses.Add(1); return chatCheck(e) }
	events.CRMChanges.Check = func(c events.CRMChange) error { crmPasses.Add(1); return crmCheck(c) }
	t.Cleanup(func() { chatbridge.ChatEvents.Check, events.CRMChanges.Check = chatCheck, crmCheck })
	s := startStack(t)

	d, err := s.chats.WazzupReassign(context.Background(), wazzupChat, bobWazzup)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, d.Status, "crmlink's answer to Wazzup's webhook: %+v", d)
	testrig.WaitFor(t, 3*time.Second, "contact and open deal given to Bob in amoCRM", func() bool {
		return s.responsible(t, "contact", clientID) == bob && s.responsible(t, "lead", openDeal) == bob
	})
	waitQueueIdle(t, s)
	require.Equal(t, 2, s.crmWrites(), "one write per selected entity")
	require.Equal(t, int32(2), chatPasses.Load(), "passes through the chat event's codec: one encode, one decode")
	require.Equal(t, int32(2*2), crmPasses.Load(), "amoCRM's two reports: one encode and one decode each")
}
