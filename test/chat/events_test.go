package chat

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
