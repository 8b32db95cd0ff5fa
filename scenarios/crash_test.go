package scenarios_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/eventstest"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/scenarios"
)

// TestSandboxKilledBetweenWriteAndRecord: a missed call from a new number (contact, deal,
// call-back task, call note) on an instance killed after one of the four amoCRM writes and
// before its record reached Redis; another instance on the same Redis handles the outcome
// again (the consumer group's claim). amoCRM has no idempotency key for any of them, so
// the repeat looks for the one action that may have been written (only the first not on
// record can be) and adopts it: the sandbox then holds exactly what an uninterrupted run
// creates. The first delivery makes no lookup; the repeat's requests are printed.
func TestSandboxKilledBetweenWriteAndRecord(t *testing.T) {
	t.Parallel()
	rdb := testrig.Redis(t)
	start := time.Now().UTC().Truncate(time.Second)
	o := at(sbIncoming("k1", sbNewDialled, false), start)
	for _, action := range []scenarios.Kind{scenarios.KindContact, scenarios.KindLead, scenarios.KindTask, scenarios.KindNote} {
		t.Run(string(action), func(t *testing.T) {
			t.Parallel()
			env := func(state events.State) *sbEnv {
				e := newSandboxEnv(t, sbConfig(nil), fastRate)
				e.clock.now = start
				e.state, e.eng = state, e.engine(t, sbConfig(nil), state)
				return e
			}
			base := env(events.NewMemoryState())
			base.handle(t, o)
			want, wantRequests := base.created(t), base.srv.RequestCounts()

			shared := events.NewRedisState(rdb, fmt.Sprintf("test:scenarios-kill:%s:%d:", action, time.Now().UnixNano()))
			e := env(&eventstest.KilledAfter{State: shared, Step: string(action)})
			_, err := e.eng.HandleCall(t.Context(), o)
			require.ErrorIs(t, err, eventstest.ErrKilled)
			first := e.srv.RequestCounts()
			for k, n := range first {
				assert.Equal(t, wantRequests[k], n, "%s on the first delivery: as many as without a crash", k)
			}

			e.srv.ResetCounters()
			e.eng = e.engine(t, sbConfig(nil), shared) // crmlink-2
			e.clock.Advance(30 * time.Second)
			res := e.handle(t, o)
			assert.True(t, res.Resumed)
			adopted := 0
			for _, s := range res.Steps {
				if s.Status == scenarios.StepAdopted {
					adopted++
					assert.Equal(t, action, s.Kind, "the action adopted")
				}
			}
			assert.Equal(t, 1, adopted, "%s", res)
			t.Logf("killed after the %s: without a crash %d requests %v; the repeat %d requests %v", action,
				base.requests(), wantRequests, e.requests(), e.srv.RequestCounts())
			assert.Equal(t, want, e.created(t), "every entity exactly once")
		})
	}
}
