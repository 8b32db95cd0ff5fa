package routing

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestManagerStatus(t *testing.T) {
	// The caller's owner is Ivan (userOther) with three phones and Moscow office hours.
	// The test clock starts Monday 2026-03-02 10:00 UTC = 13:00 in Moscow.
	office := ScheduleSpec{Timezone: "Europe/Moscow", Days: []string{"mon", "tue", "wed", "thu", "fri"}, Hours: "09:00-18:00"}
	evening := 6 * time.Hour // 19:00 in Moscow
	all := []string{"PJSIP/140", "PJSIP/141", "PJSIP/142"}
	online := func(states ...bool) func(context.Context, []string) ([]bool, error) {
		return func(context.Context, []string) ([]bool, error) { return states, nil }
	}
	cases := []struct {
		name     string
		check    bool
		manual   Availability
		advance  time.Duration
		presence func(ctx context.Context, endpoints []string) ([]bool, error)
		want     []string // nil: owner_unavailable
		asked    bool     // whether presence is consulted
	}{
		{name: "at work, all online", check: true, presence: online(true, true, true), want: all, asked: true},
		{name: "no presence source", check: true, want: all},
		{name: "partly offline: only online phones, in order", check: true, presence: online(false, true, true), want: []string{"PJSIP/141", "PJSIP/142"}, asked: true},
		{name: "all offline", check: true, presence: online(false, false, false), asked: true},
		{name: "presence error still routes", check: true, asked: true, want: all,
			presence: func(context.Context, []string) ([]bool, error) { return nil, errors.New("ARI: 503") }},
		{name: "presence answer of the wrong length still routes", check: true, presence: online(false), want: all, asked: true},
		{name: "presence that never answers still routes", check: true, asked: true, want: all,
			presence: func(ctx context.Context, _ []string) ([]bool, error) {
				<-ctx.Done()
				return []bool{false, false, false}, nil
			}},
		{name: "off schedule", check: true, advance: evening, presence: online(true, true, true)},
		{name: "manual unavailable beats schedule and presence", check: true, manual: Unavailable, presence: online(true, true, true)},
		{name: "manual unavailable even with the check off", manual: Unavailable, presence: online(true, true, true)},
		{name: "manual available beats schedule", check: true, manual: Available, advance: evening, presence: online(false, false, false), want: all},
		{name: "manual auto is the schedule again", check: true, manual: Auto, advance: evening, presence: online(true, true, true)},
		{name: "check off: off schedule and offline still routed", advance: evening, presence: online(false, false, false), want: all},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := basicWorld()
			w.leads[1][0].Responsible = userOther
			clock := newClock()
			var asked atomic.Int64
			var p Presence
			if c.presence != nil {
				p = PresenceFunc(func(ctx context.Context, _ string, eps []string) ([]bool, error) {
					asked.Add(1)
					assert.Equal(t, all, eps)
					return c.presence(ctx, eps)
				})
			}
			managers := testManagers()
			managers[3].Schedule = office
			r := newTestRouter(t, w.directory(), clock, func(o *Options) {
				o.Managers = managers
				o.CheckManagerStatus = c.check
				o.Presence = p
				o.LookupTimeout = 200 * time.Millisecond
			})
			if c.manual != Auto {
				require.NoError(t, r.SetManagerAvailability(userOther, Available)) // overwritten below
			}
			require.NoError(t, r.SetManagerAvailability(userOther, c.manual))
			assert.Equal(t, c.manual, r.ManagerAvailability(userOther))
			clock.Advance(c.advance)

			start := time.Now()
			d := r.Decide(t.Context(), call())
			assert.Less(t, time.Since(start), 200*time.Millisecond+20*time.Millisecond)
			assert.Equal(t, userOther, d.Owner)
			if c.want == nil {
				assert.Equal(t, Fallback, d.Result)
				assert.Equal(t, ReasonOwnerUnavailable, d.Reason, "steps: %+v", d.Steps)
				assert.Empty(t, d.Targets)
			} else {
				assert.Equal(t, Routed, d.Result, "steps: %+v", d.Steps)
				assert.Equal(t, targets(c.want...), d.Targets)
			}
			assert.Equal(t, c.asked, asked.Load() > 0, "presence consulted")
		})
	}
}

func TestSetManagerAvailabilityRejects(t *testing.T) {
	r := newTestRouter(t, basicWorld().directory(), newClock(), nil)
	assert.Error(t, r.SetManagerAvailability(userUnknown, Unavailable), "not a manager")
	assert.Error(t, r.SetManagerAvailability(userLead, Availability(7)))
	assert.Equal(t, Auto, r.ManagerAvailability(userLead))
}

func TestParseAvailability(t *testing.T) {
	for _, a := range []Availability{Auto, Available, Unavailable} {
		got, err := ParseAvailability(a.String())
		require.NoError(t, err)
		assert.Equal(t, a, got)
	}
	_, err := ParseAvailability("busy")
	assert.ErrorContains(t, err, "allowed: auto, available, unavailable")
}

// Presence is asked on the Asterisk the call is on (an owner's phones are on one of
// several), and with "" when the front end does not know it.
func TestPresenceAskedOnTheCallsAsterisk(t *testing.T) {
	for _, asterisk := range []string{"02:00:00:00:00:01", ""} {
		t.Run("asterisk "+asterisk, func(t *testing.T) {
			w := basicWorld()
			w.leads[1][0].Responsible = userOther
			var asked atomic.Value
			r := newTestRouter(t, w.directory(), newClock(), func(o *Options) {
				o.CheckManagerStatus = true
				o.Presence = PresenceFunc(func(_ context.Context, on string, eps []string) ([]bool, error) {
					asked.Store(on)
					return make([]bool, len(eps)), nil // every phone offline there
				})
			})
			c := call()
			c.Asterisk = asterisk
			d := r.Decide(t.Context(), c)
			assert.Equal(t, ReasonOwnerUnavailable, d.Reason, "steps: %+v", d.Steps)
			assert.Equal(t, asterisk, asked.Load())
		})
	}
}

func TestSystemName(t *testing.T) {
	for id, want := range map[string]string{
		"asterisk-1-1796426392.45": "asterisk-1",
		"pbx-1796426392.0":         "pbx",
		"1796426392.45":            "",
		"":                         "",
		"crmlink-leg-abc":          "",
	} {
		assert.Equal(t, want, SystemName(id), id)
	}
}
