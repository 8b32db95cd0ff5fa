package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/queue"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/routing"
)

// buildCrmlink compiles the real binary once per test binary.
func buildCrmlink(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "crmlink")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/crmlink/crmlink/cmd/crmlink")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// crmlinkProcess runs `crmlink serve` until killed.
type crmlinkProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startCrmlink(t *testing.T, bin, cfgPath string) *crmlinkProcess {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	logf, err := os.Create(cfgPath + ".log")
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	p := &crmlinkProcess{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			log, _ := os.ReadFile(cfgPath + ".log")
			t.Logf("crmlink's log:\n%s", log)
		}
	})
	return p
}

func (p *crmlinkProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Accepted call outcomes survive a crash while amoCRM is failing: after the restart every
// one of them reaches amoCRM exactly once, and amoCRM never sees more than its 7 requests
// a second.
func TestDurabilityOutcomesSurviveACrashWhileTheCRMFails(t *testing.T) {
	const n = 200
	crm := sandbox.New(demoSeed(), sandbox.WithLogger(testLogger(t)))
	crmSrv := httptest.NewServer(crm)
	t.Cleanup(crmSrv.Close)
	t.Cleanup(crm.Close)
	crm.FailNext(1_000_000, http.StatusInternalServerError)

	redisAddr, redisDB := testrig.RedisDB(t)
	httpAddr := freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "crmlink.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
log: {level: info, format: json}
http: {listen: %q, read_token: durability-read-token}
data_dir: %q
redis: {addrs: [%q], db: %d}
asterisk: {ari: {enabled: false}}
amocrm: {base_url: %q, token: e2e-token}
queue: {retry_for: 1h, consumer: durability-test}
`, httpAddr, t.TempDir(), redisAddr, redisDB, crmSrv.URL)), 0o600))

	// The outcomes are queued as the Stasis controller queues them: n answered calls of a
	// known client with an open deal, each worth one call note.
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, DB: redisDB})
	defer rdb.Close()
	q, err := queue.NewRedis(rdb, queue.RedisOptions{})
	require.NoError(t, err)
	ids := map[string]bool{}
	for i := range n {
		o := routing.CallOutcome{
			ID: fmt.Sprintf("durability-%03d", i), Direction: routing.Incoming, Caller: annaClient, Called: "200",
			Answered: true, AnsweredBy: annaUser, FirstOperator: annaUser, Start: time.Now(), TalkDuration: 30 * time.Second,
			Decision: routing.Decision{Result: routing.Routed, Owner: annaUser, Source: routing.SourceCache},
		}
		payload, err := json.Marshal(o)
		require.NoError(t, err)
		require.NoError(t, q.Publish(context.Background(), queue.Event{ID: o.ID, Kind: "call_outcome", Payload: payload}))
		ids[o.ID] = true
	}
	require.NoError(t, q.Close())

	bin := buildCrmlink(t)
	first := startCrmlink(t, bin, cfgPath)
	testrig.WaitFor(t, 60*time.Second, "crmlink trying amoCRM and failing", func() bool {
		return crm.Requests("/api/v4/contacts") >= 5
	})
	first.kill() // SIGKILL: no graceful anything

	crm.FailNext(0, 0)
	crm.ResetCounters()
	startCrmlink(t, bin, cfgPath)
	notesByUniq := func() map[string]int {
		m := map[string]int{}
		for _, note := range crm.Created().Notes {
			m[note.Params.Uniq]++
		}
		return m
	}
	testrig.WaitFor(t, 4*time.Minute, fmt.Sprintf("all %d call notes in amoCRM", n), func() bool {
		return len(notesByUniq()) == n
	})
	// Let the queue settle, then check that nothing came twice.
	testrig.WaitFor(t, 30*time.Second, "the queue drained", func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/v1/queue/stats", nil)
		req.Header.Set("Authorization", "Bearer durability-read-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st queue.Stats
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Pending == 0 && st.Retrying == 0 && st.InFlight == 0
	})
	for uniq, count := range notesByUniq() {
		assert.True(t, ids[uniq], "a note for an outcome nobody queued: %s", uniq)
		assert.Equal(t, 1, count, "outcome %s reached amoCRM %d times", uniq, count)
	}
	assert.Zero(t, crm.RateLimited(), "amoCRM answered 429: crmlink went past 7 requests in a second")
}
