package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/queue"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
)

// onDisk runs crmlink without Redis, its event queue and rules state under dir.
func onDisk(dir string) func(*config.Config) {
	return func(c *config.Config) {
		c.Redis.Addrs, c.Redis.DB = nil, 0
		c.DataDir = dir
	}
}

type healthz struct {
	Status string `json:"status"`
	Checks map[string]struct {
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	} `json:"checks"`
}

func getHealth(t *testing.T, s *stack) (int, healthz) {
	t.Helper()
	resp, err := http.Get(s.api + "/healthz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var h healthz
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&h))
	return resp.StatusCode, h
}

func metric(t *testing.T, s *stack, name string) string {
	t.Helper()
	resp, err := http.Get(s.api + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}

// routesOverHTTP asks /v1/route for Anna's client and expects Anna.
func routesOverHTTP(t *testing.T, s *stack) {
	t.Helper()
	resp, err := s.apiGet("/v1/route?number=" + annaClient)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var d struct {
		Result string `json:"result"`
		Owner  int64  `json:"owner"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
	assert.Equal(t, "ROUTED", d.Result)
	assert.Equal(t, int64(annaUser), d.Owner)
}

// crmlink starts on a data_dir that is full: the event store cannot open, and routing
// still answers over FastAGI (a real call rings the owner) and HTTP; /healthz and the
// metric say the store failed. Once there is room again the store opens by itself and
// takes the next call's outcome (a call through the Stasis controller, which queues
// outcomes).
func TestRoutingWorksOnAFullDataDirAndTheStoreRecovers(t *testing.T) {
	dir := testrig.SmallDisk(t, "256k")
	filler := testrig.FillDisk(t, dir)
	s := startStack(t, withAGI, onDisk(dir))

	anna := managerPhone(t, s.ast, "101")
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), agiExten)
	in := nextIncoming(t, anna, callWait)
	assert.Equal(t, annaClient, in.From(), "FastAGI routed the call to the owner")
	answerAndHangup(t, in, call)
	routesOverHTTP(t, s)

	code, h := getHealth(t, s)
	assert.Equal(t, 200, code, "routing works: /healthz stays up for a load balancer")
	require.Contains(t, h.Checks, "event_store")
	assert.False(t, h.Checks["event_store"].OK)
	assert.Contains(t, h.Checks["event_store"].Detail, "no space left on device")
	assert.Equal(t, "0", metric(t, s, "crmlink_event_store_up"))
	resp, err := s.apiGet("/v1/queue/stats")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 503, resp.StatusCode, "the queue says it is unavailable")

	require.NoError(t, os.Remove(filler))
	testrig.WaitFor(t, 90*time.Second, "the event store open again", func() bool {
		_, h := getHealth(t, s)
		return h.Checks["event_store"].OK
	})
	assert.Equal(t, "1", metric(t, s, "crmlink_event_store_up"))

	// The Stasis controller queues each call's outcome: this one is stored and handled.
	giveUp(t, anna, dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten))
	testrig.WaitFor(t, 30*time.Second, "the call's outcome stored and handled", func() bool {
		resp, err := s.apiGet("/v1/queue/stats")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st queue.Stats
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&st) == nil && st.Processed >= 1
	})
}

// giveUp is a client hanging up while the call rings the manager routed to: the call ends
// missed, and the Stasis controller queues its outcome.
func giveUp(t *testing.T, rings *siptest.Phone, call *siptest.Call) {
	t.Helper()
	nextIncoming(t, rings, callWait)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, call.Hangup(ctx))
}

// answerAndHangup answers a routed call on the manager's phone and ends it, so that its
// outcome goes to the event path.
func answerAndHangup(t *testing.T, in *siptest.IncomingCall, call *siptest.Call) {
	t.Helper()
	answer(t, in, call)
	hangupBoth(t, in, call)
}

// A data_dir that fills up or turns read-only while call outcomes wait for a failing
// amoCRM: routing goes on over FastAGI and HTTP, /healthz reports the store, and the
// outcomes that cannot be stored are retried with backoff, not in a loop: amoCRM sees a
// bounded number of requests in 10 s.
func TestStorageFailureAtRuntimeKeepsRoutingAndBacksOff(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		detail string // in /healthz
	}{
		{"disk full", func(t *testing.T, dir string) { testrig.FillDisk(t, dir) }, "no space left on device"},
		{"read-only", func(t *testing.T, dir string) { testrig.ReadOnly(t, filepath.Join(dir, "queue")) }, "read-only file system"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := testrig.SmallDisk(t, "1m")
			s := startStack(t, withAGI, onDisk(dir))
			anna := managerPhone(t, s.ast, "101")

			// The first call looks Anna's client up; later calls are answered from the cache.
			giveUp(t, anna, dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten))
			s.nextOutcome(t)
			waitCallLogged(t, s, 1)

			// amoCRM fails: the next outcomes are stored and retried.
			s.crm.FailNext(1_000_000, http.StatusInternalServerError)
			for range 2 {
				giveUp(t, anna, dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten))
				s.nextOutcome(t)
			}
			testrig.WaitFor(t, 10*time.Second, "the outcomes tried against the failing amoCRM", func() bool {
				return s.crm.Requests("GET /api/v4/contacts") > 0
			})

			c.break_(t, dir)
			s.crm.ResetCounters()
			start := time.Now()

			call := dial(t, s.ast, newCaller(t, s.ast, annaClient), agiExten)
			in := nextIncoming(t, anna, callWait)
			assert.Equal(t, annaClient, in.From(), "FastAGI routed the call to the owner")
			answerAndHangup(t, in, call)
			routesOverHTTP(t, s)
			testrig.WaitFor(t, 15*time.Second, "the store reported as failed", func() bool {
				_, h := getHealth(t, s)
				return !h.Checks["event_store"].OK && strings.Contains(h.Checks["event_store"].Detail, c.detail)
			})
			assert.Equal(t, "0", metric(t, s, "crmlink_event_store_up"))

			time.Sleep(10*time.Second - time.Since(start))
			total := 0
			for _, n := range s.crm.RequestCounts() {
				total += n
			}
			t.Logf("amoCRM requests in 10 s with the store failing: %d (%v)", total, s.crm.RequestCounts())
			assert.LessOrEqual(t, total, 12, "outcomes that cannot be stored are retried with backoff, not in a loop")
			routesOverHTTP(t, s)
		})
	}
}
