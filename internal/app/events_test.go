package app

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/queue"
	"github.com/crmlink/crmlink/routing"
)

// One client's calls and chats share an ordering key however the number was written, so
// the queue hands them to the CRM one after the other.
func TestOrderKeyOneClientOneKey(t *testing.T) {
	key := orderKey(crm.NewPhoneMemo("RU"))
	call := func(dir routing.Direction, caller, called string) queue.Event {
		b, err := json.Marshal(routing.CallOutcome{ID: "c", Direction: dir, Caller: caller, Called: called})
		require.NoError(t, err)
		return queue.Event{ID: "c", Kind: kindCallOutcome, Payload: b}
	}
	chat, err := chatbridge.Event{ID: "wz:1", Platform: "wazzup", Kind: chatbridge.EventMessage, At: time.Now(),
		Chat: chatbridge.ChatRef{ID: "79161234567"}, Phone: "+79161234567"}.QueueEvent()
	require.NoError(t, err)

	client := "phone:+79161234567"
	cases := []struct {
		name  string
		event queue.Event
		want  string
	}{
		{"incoming, international format", call(routing.Incoming, "+7 (916) 123-45-67", "84950000000"), client},
		{"incoming, national trunk prefix", call(routing.Incoming, "89161234567", "84950000000"), client},
		{"outgoing: the number called", call(routing.Outgoing, "101", "9161234567"), client},
		{"the client's chat", chat, client},
		{"an internal number is its own key", call(routing.Incoming, "101", "200"), "number:101"},
		{"an anonymous caller has no key", call(routing.Incoming, "", "200"), ""},
		{"not a client event", queue.Event{ID: "x", Kind: "other"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, key(c.event))
		})
	}
}
