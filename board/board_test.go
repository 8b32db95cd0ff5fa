package board

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/routing"
)

func TestMain(m *testing.M) { testrig.Main(m) }

const anna, boris crm.UserID = 1001, 1002

func TestTallyOfCallOutcomes(t *testing.T) {
	routed := routing.Decision{Result: routing.Routed, Owner: anna}
	for _, c := range []struct {
		name  string
		o     routing.CallOutcome
		want  []Count
		ansBy crm.UserID
	}{
		{"routed and answered by the owner",
			routing.CallOutcome{Direction: routing.Incoming, Decision: routed, Answered: true, AnsweredBy: anna, RingDuration: 3 * time.Second, TalkDuration: time.Minute},
			[]Count{{anna, FieldRouted, 1}, {anna, FieldAnswered, 1}, {anna, FieldTalkMS, 60000}}, anna},
		{"routed, the caller gave up: missed",
			routing.CallOutcome{Direction: routing.Incoming, Decision: routed},
			[]Count{{anna, FieldRouted, 1}, {anna, FieldMissed, 1}}, 0},
		{"owner did not answer, a colleague took it in the fallback",
			routing.CallOutcome{Direction: routing.Incoming, Decision: routing.Decision{Result: routing.Fallback, Reason: routing.ReasonOwnerNoAnswer, Owner: anna}, Answered: true, AnsweredBy: boris, TalkDuration: time.Second},
			[]Count{{anna, "fallback:owner_no_answer", 1}, {anna, FieldRouted, 1}, {anna, FieldMissed, 1}, {boris, FieldAnswered, 1}, {boris, FieldTalkMS, 1000}}, boris},
		{"owner unavailable: a fallback of theirs, not routed to them",
			routing.CallOutcome{Direction: routing.Incoming, Decision: routing.Decision{Result: routing.Fallback, Reason: routing.ReasonOwnerUnavailable, Owner: anna}},
			[]Count{{anna, "fallback:owner_unavailable", 1}}, 0},
		{"unknown number to the fallback: nobody's",
			routing.CallOutcome{Direction: routing.Incoming, Decision: routing.FallbackDecision(routing.ReasonNotFound)},
			[]Count{{0, "fallback:not_found", 1}}, 0},
		{"outgoing answered: the manager's talk time",
			routing.CallOutcome{Direction: routing.Outgoing, Manager: boris, Answered: true, TalkDuration: 2 * time.Second},
			[]Count{{boris, FieldTalkMS, 2000}}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := TallyOf(c.o)
			assert.Equal(t, c.want, got.Counts)
			assert.Equal(t, c.ansBy, got.Answerer)
		})
	}
}

// stores runs a test against both stores, each reopened as after a restart.
func stores(t *testing.T, f func(t *testing.T, open func() Store)) {
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		f(t, func() Store { return NewFileStore(filepath.Join(dir, "board")) })
	})
	t.Run("redis", func(t *testing.T) {
		rdb := testrig.Redis(t)
		prefix := "test:board:" + t.Name() + time.Now().Format("150405.000") + ":"
		f(t, func() Store { return NewRedisStore(rdb, prefix) })
	})
}

func TestLedgerSurvivesARestartAndResetsAtLocalMidnight(t *testing.T) {
	stores(t, func(t *testing.T, open func() Store) {
		ctx := context.Background()
		moscow, err := time.LoadLocation("Europe/Moscow")
		require.NoError(t, err)
		// 23:59 in Moscow is 20:59 UTC: still the same UTC day after midnight in Moscow.
		clock := time.Date(2026, 12, 4, 20, 59, 0, 0, time.UTC)
		ledger := func() *Ledger {
			l := NewLedger(open(), moscow, []crm.UserID{anna, boris}, map[crm.UserID]string{anna: "Anna", boris: "Boris"}, nil)
			l.now = func() time.Time { return clock }
			return l
		}
		l := ledger()
		for _, ring := range []time.Duration{time.Second, 5 * time.Second, 3 * time.Second} {
			require.NoError(t, l.Add(ctx, TallyOf(routing.CallOutcome{Direction: routing.Incoming,
				Decision: routing.Decision{Result: routing.Routed, Owner: anna}, Answered: true, AnsweredBy: anna, RingDuration: ring, TalkDuration: 10 * time.Second})))
		}
		require.NoError(t, l.Add(ctx, TallyOf(routing.CallOutcome{Direction: routing.Incoming, Decision: routing.FallbackDecision(routing.ReasonNotFound)})))
		require.NoError(t, l.Add(ctx, ChatTally(boris, 2)))

		day, figs, err := ledger().Figures(ctx) // a restarted crmlink
		require.NoError(t, err)
		assert.Equal(t, "2026-12-04", day)
		require.Len(t, figs, 3)
		assert.Equal(t, Figures{Manager: anna, Name: "Anna", Routed: 3, Answered: 3, MedianAnswerMS: 3000, TalkMS: 30000}, figs[0])
		assert.Equal(t, Figures{Manager: boris, Name: "Boris", Chats: 2}, figs[1])
		assert.Equal(t, Figures{Fallbacks: map[routing.Reason]int64{routing.ReasonNotFound: 1}}, figs[2], "nobody's clients last")

		clock = clock.Add(2 * time.Minute) // 00:01 in Moscow
		day, figs, err = ledger().Figures(ctx)
		require.NoError(t, err)
		assert.Equal(t, "2026-12-05", day)
		assert.Equal(t, []Figures{{Manager: anna, Name: "Anna"}, {Manager: boris, Name: "Boris"}}, figs, "a new day starts empty")
	})
}

func TestBoardMergesTheReportsOfOneCall(t *testing.T) {
	hub := NewHub()
	sig, stop := hub.Subscribe()
	defer stop()
	b := NewBoard(map[string]crm.UserID{"PJSIP/101": anna, "PJSIP/102": boris}, map[crm.UserID]string{anna: "Anna", boris: "Boris"}, hub)
	d := routing.Decision{Result: routing.Routed, Owner: anna, Client: &routing.Client{Known: true, ContactName: "<script>x</script>"}}
	b.Ringing("c1", Ring{Direction: routing.Incoming, Caller: "84951000001", Decision: d, Endpoints: []string{"PJSIP/101"}})
	<-sig
	// The observer reports the same call with what the dialplan variables say.
	b.Ringing("c1", Ring{Caller: "84951000001", Decision: routing.Decision{Result: routing.Routed, Owner: anna}, Endpoints: []string{"PJSIP/101"}})
	calls := b.Calls()
	require.Len(t, calls, 1)
	c := calls[0]
	assert.Equal(t, StateRinging, c.State)
	assert.Equal(t, "<script>x</script>", c.Contact, "the name stays as the CRM has it; the page escapes it")
	assert.Equal(t, []Person{{Manager: anna, Name: "Anna", Endpoint: "PJSIP/101"}}, c.Ringing)

	b.Answered("c1", "PJSIP/101")
	c = b.Calls()[0]
	assert.Equal(t, StateTalking, c.State)
	assert.Equal(t, &Person{Manager: anna, Name: "Anna", Endpoint: "PJSIP/101"}, c.Talking)
	assert.Empty(t, c.Ringing)

	b.Ended("c1")
	b.Ended("c1")
	assert.Empty(t, b.Calls())
}

func TestBoardNamesObservedCallsFromTheirDecision(t *testing.T) {
	b := NewBoard(map[string]crm.UserID{"PJSIP/101": anna}, map[crm.UserID]string{anna: "Anna"}, nil)
	clock := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	b.now = func() time.Time { return clock }
	// FastAGI's decision: the router found the contact.
	b.Decided("84951000001", routing.Decision{Result: routing.Routed, Owner: anna, Client: &routing.Client{Known: true, ContactName: "Irina"}})
	b.Decided("84951000002", routing.Decision{Result: routing.Routed, Owner: anna, Client: &routing.Client{Known: true, ContactName: "Oleg"}})
	clock = clock.Add(2 * time.Second)
	// The observer sees the first call ring: only the dialplan's variables.
	b.Ringing("L1", Ring{Direction: routing.Incoming, Caller: "84951000001", Decision: routing.Decision{Result: routing.Routed, Owner: anna}, Endpoints: []string{"PJSIP/101"}})
	clock = clock.Add(nameMemory)
	b.Ringing("L2", Ring{Direction: routing.Incoming, Caller: "84951000002", Endpoints: []string{"PJSIP/101"}})
	calls := b.Calls()
	require.Len(t, calls, 2)
	assert.Equal(t, "Irina", calls[0].Contact)
	assert.Empty(t, calls[1].Contact, "a decision older than a minute is not this call's")
}
