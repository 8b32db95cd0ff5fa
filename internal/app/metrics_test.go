package app

import (
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/routing"
)

// Calls through two Asterisks are counted apart: the routing they got and their outcomes
// carry the Asterisk they came through.
func TestMetricsTellAsterisksApart(t *testing.T) {
	cfg := everythingConfig(t)
	p, err := New(cfg, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(p.Close)
	for _, tc := range []struct {
		asterisk string
		calls    int
	}{
		{"02:00:00:00:00:01", 2},
		{"02:00:00:00:00:02", 1},
	} {
		for i := range tc.calls {
			c := routing.Call{Caller: "84951000001", Asterisk: tc.asterisk}
			p.metrics.observe(c, routing.Decision{Result: routing.Routed, Owner: 1001, Source: routing.SourceCache})
			p.observeOutcome(routing.CallOutcome{ID: tc.asterisk + string(rune('a'+i)), Asterisk: tc.asterisk, Direction: routing.Incoming, Caller: c.Caller, Answered: true})
		}
	}
	count := func(metric string) map[string]float64 {
		families, err := p.metrics.registry.Gather()
		require.NoError(t, err)
		by := map[string]float64{}
		for _, f := range families {
			if f.GetName() != metric {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "asterisk" {
						by[l.GetValue()] += m.GetCounter().GetValue()
					}
				}
			}
		}
		return by
	}
	want := map[string]float64{"02:00:00:00:00:01": 2, "02:00:00:00:00:02": 1}
	assert.Equal(t, want, count("crmlink_route_decisions_total"))
	assert.Equal(t, want, count("crmlink_calls_total"))
}
