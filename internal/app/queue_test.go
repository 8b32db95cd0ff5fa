package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/queue"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/routing"
)

// serveApp runs a's HTTP API and queue until the test ends and returns the API's base URL.
func serveApp(t *testing.T, a *App) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return "http://" + l.Addr().String()
}

func httpDo(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// testAdminToken is the http.token the queue tests configure.
const testAdminToken = "admin-token"

// apiStats reads GET /v1/queue/stats with the admin token.
func apiStats(t *testing.T, base string) queue.Stats {
	t.Helper()
	code, body := httpDo(t, "GET", base+"/v1/queue/stats", testAdminToken)
	require.Equal(t, http.StatusOK, code, body)
	var s queue.Stats
	require.NoError(t, json.Unmarshal([]byte(body), &s))
	return s
}

// POST /v1/queue/dead/replay changes state: like the single replay it needs http.token.
func TestReplayAllDeadLettersNeedsTheToken(t *testing.T) {
	for _, withRedis := range []bool{false, true} {
		name := map[bool]string{false: "disk", true: "redis"}[withRedis]
		t.Run(name, func(t *testing.T) {
			a, _ := reloadApp(t, func(c *config.Config) {
				c.HTTP.Token = testAdminToken
				if withRedis {
					addr, db := testrig.RedisDB(t)
					c.Redis.Addrs, c.Redis.DB = []string{addr}, db
				}
			})
			base := serveApp(t, a)
			for _, id := range []string{"odd-1", "odd-2"} {
				// A kind nothing handles: dead at once, and again after every replay.
				require.NoError(t, a.events.queue.Publish(context.Background(), queue.Event{ID: id, Kind: "from_the_future"}))
			}
			stats := func() queue.Stats { return apiStats(t, base) }
			testrig.WaitFor(t, 10*time.Second, "two dead letters", func() bool { s := stats(); return s.Dead == 2 && s.InFlight == 0 })

			for _, token := range []string{"", "wrong"} {
				code, _ := httpDo(t, "POST", base+"/v1/queue/dead/replay", token)
				assert.Equal(t, http.StatusUnauthorized, code, "token %q", token)
			}
			assert.EqualValues(t, 2, stats().Failures, "nothing was replayed without the token")

			code, body := httpDo(t, "POST", base+"/v1/queue/dead/replay", testAdminToken)
			assert.Equal(t, http.StatusOK, code)
			assert.JSONEq(t, `{"replayed":2}`, body)
			testrig.WaitFor(t, 10*time.Second, "both handled again", func() bool { s := stats(); return s.Failures == 4 && s.Dead == 2 })
		})
	}
}

// A withheld caller's outcome is acknowledged without a CRM request; it used to land in the
// dead-letter list as `parse phone "anonymous"`, once per such call.
func TestCallsWithoutAClientNumberAreNotDeadLettered(t *testing.T) {
	a, _, crm := sandboxApp(t, zerolog.Nop(), func(c *config.Config) { c.HTTP.Token = testAdminToken })
	base := serveApp(t, a)
	before := crm.RequestCounts()
	callers := []string{"anonymous", "Anonymous", "unknown", "", "restricted", "asterisk"}
	for i, caller := range callers {
		require.NoError(t, publishCall(a, routing.CallOutcome{
			ID: fmt.Sprintf("1764800000.%d", i), Direction: routing.Incoming, Caller: caller, Called: "200",
			Start: time.Now(), RingDuration: 20 * time.Second,
		}))
	}
	var s queue.Stats
	testrig.WaitFor(t, 10*time.Second, "every outcome settled", func() bool {
		s = apiStats(t, base)
		return s.Processed+s.Dead == int64(len(callers)) && s.InFlight == 0
	})
	assert.EqualValues(t, len(callers), s.Processed)
	assert.Zero(t, s.Dead, "nothing for an admin to act on")
	assert.Zero(t, s.Failures)
	assert.Equal(t, before, crm.RequestCounts(), "no amoCRM request for a call without a number")
}

// crmlink cannot make Redis durable, but it must say at start, and on /healthz until fixed,
// what a Redis restart would lose and what to set. The test turns persistence on and off
// on a redis-server of its own: the rig's Redis is shared.
func TestRedisWithoutPersistenceIsReported(t *testing.T) {
	addr := testrig.PrivateRedis(t) // appendonly no, save ""
	var logs bytes.Buffer
	a, _, _ := sandboxApp(t, zerolog.New(&logs), func(c *config.Config) { c.Redis.Addrs = []string{addr} })

	var warning struct{ Level, Message string }
	for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
		if bytes.Contains(line, []byte("persistence")) {
			require.NoError(t, json.Unmarshal(line, &warning))
		}
	}
	assert.Equal(t, "warn", warning.Level)
	assert.Contains(t, warning.Message, `Redis has no persistence (appendonly no, save "")`)
	assert.Contains(t, warning.Message, "loses every queued event: call outcomes and chat events not yet written to amoCRM")
	assert.Contains(t, warning.Message, "set appendonly yes and appendfsync everysec")

	base := serveApp(t, a)
	health := func() (int, map[string]any) {
		code, body := httpDo(t, "GET", base+"/healthz", "")
		var h struct{ Checks map[string]map[string]any }
		require.NoError(t, json.Unmarshal([]byte(body), &h), body)
		return code, h.Checks["queue_persistence"]
	}
	code, check := health()
	assert.Equal(t, http.StatusOK, code, "calls are still routed: not a failed health check")
	assert.Equal(t, false, check["ok"])
	assert.Contains(t, check["detail"], "set appendonly yes")

	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	require.NoError(t, rdb.ConfigSet(context.Background(), "appendonly", "yes").Err())
	_, check = health()
	assert.Equal(t, true, check["ok"])
	assert.Equal(t, "appendonly yes, appendfsync everysec", check["detail"])
}

// publishCall queues a call outcome as the outbox does, returning its error.
func publishCall(a *App, o routing.CallOutcome) error {
	e, err := a.events.calls.Encode(o)
	if err != nil {
		return err
	}
	return a.events.store(context.Background(), e)
}
