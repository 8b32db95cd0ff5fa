package intake_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/intake"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/eventstest"
	"github.com/crmlink/crmlink/internal/testrig"
)

// requestsOf is what the sandbox counted since the last reset, and their total.
func (r *rig) requestsOf() (map[string]int, int) {
	got := r.sb.RequestCounts()
	n := 0
	for _, v := range got {
		n += v
	}
	return got, n
}

// lookups are the requests only a possible repeat makes: a contact read by id and note
// lists. A first delivery makes none.
func lookups(counts map[string]int) int {
	n := 0
	for k, v := range counts {
		if strings.HasPrefix(k, "GET /api/v4/contacts/") || strings.HasPrefix(k, "GET ") && strings.HasSuffix(k, "/notes") {
			n += v
		}
	}
	return n
}

// TestCrashBetweenWriteAndRecord: crmlink dies after an amoCRM create succeeded and before
// the step was recorded in Redis; another instance, on the same Redis, handles the event
// again (the consumer group's claim). amoCRM has no idempotency key for contacts, deals
// or notes, so the second attempt finds what the first wrote and adopts it: the sandbox
// holds every entity exactly once. The first delivery makes no request a run without the
// lookups would not; the repeat pays a few reads, printed.
func TestCrashBetweenWriteAndRecord(t *testing.T) {
	rdb := testrig.Redis(t)
	finished := func(ev chatbridge.Event) chatbridge.Event {
		ev.ID, ev.Kind = strings.Replace(ev.ID, "chat_accepted", "chat_finished", 1), chatbridge.EventChatFinished
		ev.Message = &chatbridge.Message{Text: "thanks, bye", Inbound: true}
		return ev
	}
	agents := intake.WithChatUsers(func(id string) (crm.UserID, bool) { return third, id == "4410" })
	unsorted := config()
	unsorted.Mode = intake.ModeUnsorted
	cases := []struct {
		name string
		cfg  intake.Config
		// dies: the step whose record is lost; before: events handled (in full) first.
		dies   string
		before []func(chatbridge.Event) chatbridge.Event
		event  func(chatbridge.Event) chatbridge.Event
		// contacts, leads, notes: what the sandbox holds at the end.
		contacts, leads, notes int
	}{
		{name: "contact created", cfg: config(), dies: "contact", contacts: 1, leads: 1, notes: 1},
		{name: "deal created", cfg: config(), dies: "lead", contacts: 1, leads: 1, notes: 1},
		{name: "note added", cfg: config(), dies: "note", contacts: 1, leads: 1, notes: 1},
		{name: "contact only, contact created", cfg: contactOnly(), dies: "contact", contacts: 1, leads: 0, notes: 1},
		{
			name: "chat_finished summary added", cfg: config(), dies: "finished:jivo:chat_finished:c1",
			before: []func(chatbridge.Event) chatbridge.Event{same}, event: finished, contacts: 1, leads: 1, notes: 2,
		},
		{name: "unsorted: accepted entry's note added", cfg: unsorted, dies: "note", contacts: 1, leads: 1, notes: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			prefix := fmt.Sprintf("test:intake-crash:%d:", time.Now().UnixNano())
			shared := events.NewRedisState(rdb, prefix)
			ev := chat("c1", "+79035550101", "c1@example.com")
			event := same
			if tc.event != nil {
				event = tc.event
			}
			instance := func(st events.State) *intake.Engine {
				e, err := intake.New(tc.cfg, r.client, st, intake.WithManagers(managers(t)), agents)
				require.NoError(t, err)
				return e
			}
			for _, b := range tc.before {
				handle(t, instance(shared), b(ev))
			}
			r.sb.ResetCounters()

			// crmlink-1 writes and dies before recording.
			_, err := instance(&eventstest.KilledAfter{State: shared, Step: tc.dies}).Handle(t.Context(), event(ev))
			require.ErrorIs(t, err, eventstest.ErrKilled)
			first, firstN := r.requestsOf()
			assert.Zero(t, lookups(first), "the first delivery looks nothing up: %v", first)

			// crmlink-2 claims the event.
			r.sb.ResetCounters()
			res := handle(t, instance(shared), event(ev))
			assert.True(t, res.Adopted, "the repeat found what crmlink-1 wrote")
			again, againN := r.requestsOf()
			t.Logf("first delivery: %d requests %v; the repeat: %d requests %v", firstN, first, againN, again)

			// A third delivery writes nothing.
			r.sb.ResetCounters()
			handle(t, instance(shared), event(ev))
			third, _ := r.requestsOf()
			assert.Zero(t, writesIn(third), "a third delivery writes nothing: %v", third)

			got := r.sb.Created()
			assert.LessOrEqual(t, len(got.Unsorted), 1, "Unsorted entries")
			assert.Equal(t, []int{tc.contacts, tc.leads, tc.notes}, []int{len(got.Contacts), len(got.Leads), len(got.Notes)},
				"contacts, deals, notes in the sandbox (an accepted Unsorted entry's included)")
		})
	}
}

// TestFirstDeliveryRequests: handling a new client's chat once costs exactly the requests it
// cost before lookups on repeats existed: two searches (phone, email), the contact, the
// deal and the note.
func TestFirstDeliveryRequests(t *testing.T) {
	r := newRig(t)
	e, err := intake.New(config(), r.client, events.NewRedisState(testrig.Redis(t), fmt.Sprintf("test:intake-first:%d:", time.Now().UnixNano())),
		intake.WithManagers(managers(t)))
	require.NoError(t, err)
	handle(t, e, chat("f1", "+79035550101", "f1@example.com"))
	got, n := r.requestsOf()
	t.Logf("first delivery: %d requests %v", n, got)
	assert.Equal(t, map[string]int{
		"GET /api/v4/contacts": 2, "POST /api/v4/contacts": 1, "POST /api/v4/leads": 1, "POST /api/v4/leads/notes": 1,
	}, got)
}

func same(ev chatbridge.Event) chatbridge.Event { return ev }

func contactOnly() intake.Config {
	c := config()
	c.Default.Action = intake.ActionContactOnly
	return c
}

func writesIn(counts map[string]int) int {
	n := 0
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		if !strings.HasPrefix(k, "GET ") {
			n += counts[k]
		}
	}
	return n
}
