package app

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/routing"
)

// TestGrafanaDashboardQueriesExistingMetrics: every metric deploy/grafana's dashboard
// queries is one crmlink serves once calls and chats were counted, so an import never
// shows empty panels for a renamed metric.
func TestGrafanaDashboardQueriesExistingMetrics(t *testing.T) {
	cfg := everythingConfig(t)
	p, err := New(cfg, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(p.Close)
	p.observeOutcome(routing.CallOutcome{ID: "c1", Direction: routing.Incoming, Caller: "84951000001",
		Decision: routing.Decision{Result: routing.Routed, Owner: 1001}, Answered: true, AnsweredBy: 1001, RingDuration: 2 * time.Second, TalkDuration: time.Minute})
	p.observeOutcome(routing.CallOutcome{ID: "c2", Direction: routing.Incoming, Caller: "84951000002", Decision: routing.FallbackDecision(routing.ReasonNotFound)})
	p.page.chatsAssigned(1001, 1)
	p.metrics.observe(routing.Call{Caller: "84951000001"}, routing.Decision{Result: routing.Routed, Owner: 1001, Source: routing.SourceCRM})

	families, err := p.metrics.registry.Gather()
	require.NoError(t, err)
	served := map[string]bool{}
	for _, f := range families {
		served[f.GetName()] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			served[f.GetName()+suffix] = f.GetType().String() == "HISTOGRAM"
		}
	}

	data, err := os.ReadFile("../../deploy/grafana/crmlink-managers.json")
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(data, &dash))
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	require.NotEmpty(t, exprs)
	metric := regexp.MustCompile(`\bcrmlink_[a-z0-9_]+`)
	queried := 0
	for _, e := range exprs {
		for _, name := range metric.FindAllString(e, -1) {
			queried++
			assert.True(t, served[name], "the dashboard queries %s, which crmlink does not serve (%s)", name, e)
		}
		// Managers are labelled by id: names are not in the metrics.
		assert.NotContains(t, strings.ToLower(e), "name=", e)
	}
	assert.GreaterOrEqual(t, queried, 8)
}
