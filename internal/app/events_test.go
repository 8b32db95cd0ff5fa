package app

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/queue"
	"github.com/crmlink/crmlink/routing"
)

// One client's calls and chats share an ordering key however the number was written, so
// the queue hands them to the CRM one after the other: the key the producer stored with the
// event, and for an event stored without one (by an older crmlink) the key its payload gives.
func TestOrderKeyOneClientOneKey(t *testing.T) {
	calls := events.CallOutcomes(crm.NewPhoneMemo("RU"))
	d := events.NewDispatcher(zerolog.Nop())
	events.On(d, calls, nil)
	events.On(d, chatbridge.ChatEvents, nil)
	call := func(dir routing.Direction, caller, called string) queue.Event {
		e, err := calls.Encode(routing.CallOutcome{ID: "c", Direction: dir, Caller: caller, Called: called})
		require.NoError(t, err)
		return queue.EventOf(e)
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
		{"the client's chat", queue.EventOf(chat), client},
		{"an internal number is its own key", call(routing.Incoming, "101", "200"), "number:101"},
		{"an anonymous caller has no key", call(routing.Incoming, "", "200"), ""},
		{"not a client event", queue.Event{ID: "x", Kind: "other"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, c.event.Key, "stored by the producer")
			assert.Equal(t, c.want, d.OrderKey(c.event.Envelope()))
			legacy := c.event
			legacy.Key = ""
			b, err := json.Marshal(legacy)
			require.NoError(t, err)
			var stored queue.Event
			require.NoError(t, json.Unmarshal(b, &stored))
			assert.Equal(t, c.want, d.OrderKey(stored.Envelope()), "stored without a key")
		})
	}
}
