package scenarios_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/scenarios"
	"github.com/crmlink/crmlink/scenarios/scenariotest"
)

// The rules engine per event, with the default scenarios on the in-memory CRM of
// scenariotest: what crmlink itself spends on one finished call (planning, state, templates),
// the CRM's own time left out. Each iteration is a new outcome (a new call), so nothing is
// answered from an earlier attempt's state.

var benchEnd = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const benchClient = "89161234567"

// BenchmarkRulesAnsweredKnown: an answered call from a client with an open deal: a call note.
func BenchmarkRulesAnsweredKnown(b *testing.B) {
	benchmarkRules(b, events.NewMemoryState(), true, func(i int) routing.CallOutcome { return benchOutcome(i, benchClient, true) })
}

// BenchmarkRulesMissedKnown: a missed call from that client: a call-back task (once, while
// it is open) and a note.
func BenchmarkRulesMissedKnown(b *testing.B) {
	benchmarkRules(b, events.NewMemoryState(), true, func(i int) routing.CallOutcome { return benchOutcome(i, benchClient, false) })
}

// BenchmarkRulesMissedKnownRedis: the same with the engine's state in Redis (several
// crmlink instances).
func BenchmarkRulesMissedKnownRedis(b *testing.B) {
	benchmarkRules(b, events.NewRedisState(testrig.Redis(b), ""), true, func(i int) routing.CallOutcome { return benchOutcome(i, benchClient, false) })
}

// BenchmarkRulesAnsweredUnknown: an answered call from a number no contact has: a new
// contact and deal, and a note. Every iteration is another number.
func BenchmarkRulesAnsweredUnknown(b *testing.B) {
	benchmarkRules(b, events.NewMemoryState(), false, func(i int) routing.CallOutcome {
		return benchOutcome(i, "8916"+strconv.Itoa(2000000+i%8000000), true)
	})
}

// benchFreshEvery bounds the in-memory CRM: it scans its contacts and notes one by one, so
// an account grown by every iteration would measure the fake rather than the engine.
const benchFreshEvery = 500

func benchmarkRules(b *testing.B, state events.State, known bool, outcome func(int) routing.CallOutcome) {
	ctx := context.Background()
	newEngine := func() *scenarios.Engine {
		fake := scenariotest.New()
		fake.Now = func() time.Time { return benchEnd }
		if known {
			id := fake.AddContact(crm.Contact{ID: 501, Name: "Anna Petrova", Responsible: 13,
				Phones: []string{"+7 (916) 123-45-67"}, UpdatedAt: benchEnd.Add(-24 * time.Hour)})
			fake.AddLead(crm.Lead{ID: 601, Name: "Order #17", PipelineID: 10, StatusID: 100,
				Responsible: 13, UpdatedAt: benchEnd.Add(-time.Hour)}, id)
		}
		eng, err := scenarios.New(scenarios.Defaults(), fake, fake, state,
			scenarios.WithRegion("RU"), scenarios.WithLocation(time.UTC), scenarios.WithClock(func() time.Time { return benchEnd }))
		if err != nil {
			b.Fatal(err)
		}
		return eng
	}
	eng := newEngine()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i > 0 && i%benchFreshEvery == 0 {
			b.StopTimer()
			eng = newEngine()
			b.StartTimer()
		}
		if _, err := eng.HandleCall(ctx, outcome(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// benchOutcome is call i from number, ended at benchEnd after 30 s of ringing (and 95 s of
// talk when answered).
func benchOutcome(i int, number string, answered bool) routing.CallOutcome {
	o := routing.CallOutcome{
		ID: "bench-" + strconv.Itoa(i), Direction: routing.Incoming, Caller: number, Called: "74951112233",
		Answered: answered, FirstOperator: 11, RingDuration: 30 * time.Second, Start: benchEnd.Add(-30 * time.Second),
	}
	if answered {
		o.AnsweredBy, o.TalkDuration = 12, 95*time.Second
		o.Start = o.Start.Add(-o.TalkDuration)
	}
	return o
}
