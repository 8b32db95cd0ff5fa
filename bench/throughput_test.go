package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
)

// TestCRMThroughput is the "CRM throughput" stretch at a fifth of its size: 200 routed
// outcomes of the mix handed to the event path at once, amoCRM's 7 requests a
// second enforced. Every note lands once, no request is refused with 429, and a known
// client's answered call costs a fraction of a request (its note shares a POST).
func TestCRMThroughput(t *testing.T) {
	addr, db := testrig.RedisDB(t)
	opts := ThroughputOptions{RedisAddr: addr, RedisDB: db, Timeout: time.Minute}

	mixed, err := RunThroughput(t.Context(), opts, ThroughputMix(200))
	t.Logf("200 mixed outcomes: %.1f s, %d requests %v, 429s %d, duplicates %d",
		mixed.Seconds, mixed.RequestTotal(), mixed.Requests, mixed.RateLimited, mixed.Duplicates)
	require.NoError(t, err)
	assert.Equal(t, 200, mixed.Done, "every outcome's note in amoCRM")
	assert.Zero(t, mixed.RateLimited, "429s")
	assert.Zero(t, mixed.Duplicates, "entities created twice")

	known := make([]OutcomeKind, 100)
	for i := range known {
		known[i] = KnownAnswered
	}
	run, err := RunThroughput(t.Context(), opts, known)
	t.Logf("100 known answered: %.1f s, %d requests %v", run.Seconds, run.RequestTotal(), run.Requests)
	require.NoError(t, err)
	assert.Zero(t, run.RateLimited, "429s")
	assert.Zero(t, run.Duplicates, "entities created twice")
	assert.LessOrEqual(t, run.RequestsPerOutcome, 0.1, "amoCRM requests per known answered call")
	assert.Zero(t, run.Requests["GET /api/v4/contacts"]+run.Requests["GET /api/v4/leads"], "no read after a routed call")

	rep := &ThroughputReport{Mixed: mixed, PerKind: map[OutcomeKind]ThroughputRun{KnownAnswered: run}}
	rep.judge()
	assert.True(t, rep.Pass, "the stretch's verdict")
	var b strings.Builder
	rep.markdown(&b)
	assert.Contains(t, b.String(), "| mixed, at once | 200 |")
	assert.Contains(t, b.String(), "| known_answered alone | 100 |")
	assert.Contains(t, b.String(), "**pass**")
}
