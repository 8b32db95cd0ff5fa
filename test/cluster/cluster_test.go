// Package cluster is the multi-host test (make test-cluster): deploy/cluster/compose.yaml
// (two Asterisks, two crmlink instances behind HAProxy, three Redis servers with three
// Sentinels, the amoCRM sandbox) on Docker networks of its own, with real SIP calls from
// this process through both Asterisks, and then its parts are broken:
//   - a crmlink is cut off from Redis (docker network disconnect): it steps aside
//     (/healthz 503), HAProxy stops sending it calls, calls keep reaching their owners;
//   - a crmlink is killed (SIGKILL) during a call burst: after a failover window, measured
//     and bounded, every call reaches its owner; every call has exactly one outcome;
//   - the Redis master is killed during a burst of online-chat webhooks: Sentinel promotes
//     a replica, and every webhook answered 2xx is in the sandbox exactly once;
//   - the crmlink holding the Asterisks' ARI Outbound WebSockets (through HAProxy) is killed
//     during a burst of ARI calls: the Asterisks reconnect to the other, the failover window
//     is measured and bounded, and every call has exactly one call note in the sandbox;
//   - the call observer (each Asterisk connects it through HAProxy): FastAGI calls on both
//     Asterisks give one outcome each naming the right Asterisk and one call note; the
//     crmlink holding its connections is killed during a burst: the Asterisks reconnect to
//     the other, calls after the reconnect are recorded, what is lost is measured
//     (observer_test.go);
//   - across all of it the sandbox never answers 429: both instances together keep to the
//     account's 7 requests per second.
//
// It runs where `docker info` answers and is skipped elsewhere; CRMLINK_CLUSTER_TEST=required
// turns the skip into a failure. The stack's addresses are its own (172.31.19-21.0/24, see the
// Compose file); containers, networks and images are named crmlink-cluster-*; the shared
// rig is not touched.
package cluster

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
)

// The stack's addresses (deploy/cluster/compose.yaml).
const (
	project   = "crmlink-cluster"
	prefix    = "crmlink-cluster-" // container names
	haproxy   = "http://172.31.19.10:8080"
	stats     = "http://172.31.19.10:8404/stats;csv"
	sandbox   = "http://172.31.19.40:8099"
	office    = "172.31.19.1" // this host on the office network: the phones
	pstn      = "172.31.21.1" // this host on the provider network: the callers
	redisNet  = "crmlink-cluster-redis"
	apiToken  = "cluster-api-token"
	jivoToken = "cluster-jivo-secret-0123456789"
)

var (
	crmlinkURL = map[string]string{"crmlink-1": "http://172.31.19.31:8080", "crmlink-2": "http://172.31.19.32:8080"}
	// Each Asterisk: its address on the provider network and its desk phone's port.
	asterisks = []pbx{{"asterisk-1", "172.31.21.21:5060", "172.31.19.21:5060", 5170}, {"asterisk-2", "172.31.21.22:5060", "172.31.19.22:5060", 5171}}
	// redisIP maps the Redis servers' addresses to their containers.
	redisIP = map[string]string{"172.31.20.11": "redis-1", "172.31.20.12": "redis-2", "172.31.20.13": "redis-3"}
)

type pbx struct {
	name     string
	trunk    string // where the provider sends calls
	office   string // where the phones register
	deskPort int
}

// The client: Irina Sokolova, whose personal manager is Anna (PJSIP/101), in demo/seed.yaml.
const clientNumber = "84951000001"

// stack is the running Compose project.
type stack struct {
	t       *testing.T
	root    string
	compose []string
	file    string
}

func (s *stack) dc(timeout time.Duration, args ...string) (string, error) {
	full := append(append(slices.Clone(s.compose[1:]), "-p", project, "-f", s.file), args...)
	return testrig.Exec(s.t, s.root, timeout, s.compose[0], full...)
}

func (s *stack) docker(args ...string) string {
	s.t.Helper()
	out, err := testrig.Exec(s.t, "", time.Minute, "docker", args...)
	require.NoError(s.t, err, "docker %s: %s", strings.Join(args, " "), out)
	return strings.TrimSpace(out)
}

func up(t *testing.T) *stack {
	compose := testrig.Docker(t, "CRMLINK_CLUSTER_TEST")
	root := testrig.RepoRoot(t)
	t.Setenv("CRMLINK_IMAGE_PREFIX", "crmlink-cluster")
	start := time.Now()
	out, err := testrig.Exec(t, root, 10*time.Minute, filepath.Join(root, "docker", "images.sh"), "cluster")
	require.NoError(t, err, "docker/images.sh cluster:\n%s", out)
	t.Logf("images ready in %s", time.Since(start).Round(time.Second))

	s := &stack{t: t, root: root, compose: compose, file: filepath.Join(root, "deploy", "cluster", "compose.yaml")}
	_, _ = s.dc(2*time.Minute, "down", "-v", "--remove-orphans") // what a killed run left
	start = time.Now()
	out, err = s.dc(3*time.Minute, "up", "-d")
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := s.dc(time.Minute, "logs", "--no-color", "--tail", "60", "haproxy", "crmlink-1", "crmlink-2", "asterisk-1", "asterisk-2")
			t.Logf("the stack's logs:\n%s", logs)
		}
		stopped := time.Now()
		out, err := s.dc(3*time.Minute, "down", "-v", "--remove-orphans", "-t", "5")
		assert.NoError(t, err, "compose down:\n%s", out)
		t.Logf("stack down in %s", time.Since(stopped).Round(100*time.Millisecond))
	})
	require.NoError(t, err, "compose up:\n%s", out)
	for name, u := range crmlinkURL {
		testrig.WaitFor(t, 90*time.Second, name+" healthy", func() bool { return healthz(u) == http.StatusOK })
	}
	for name := range crmlinkURL {
		waitInPool(t, name, "UP")
	}
	t.Logf("stack up in %s", time.Since(start).Round(100*time.Millisecond))
	return s
}

var client = &http.Client{Timeout: 3 * time.Second}

// inPool is the state HAProxy's FastAGI backend has for a crmlink: "UP", "DOWN", or a
// transition ("UP 1/2").
func inPool(name string) string {
	resp, err := client.Get(stats)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(rows) == 0 {
		return ""
	}
	col := slices.Index(rows[0], "status")
	for _, r := range rows[1:] {
		if col > 0 && len(r) > col && r[0] == "crmlink_fastagi" && r[1] == name {
			return r[col]
		}
	}
	return ""
}

// waitInPool waits until HAProxy sends the Asterisks' FastAGI connections to name ("UP")
// or no more ("DOWN").
func waitInPool(t *testing.T, name, state string) {
	t.Helper()
	testrig.WaitFor(t, 30*time.Second, fmt.Sprintf("HAProxy to mark %s %s", name, state), func() bool { return inPool(name) == state })
}

// inboundConns is how many Asterisks are connected to a crmlink over their ARI Outbound
// WebSockets (its crmlink_ari_inbound_connections; -100 when it does not answer).
func inboundConns(name string) int {
	resp, err := client.Get(crmlinkURL[name] + "/metrics")
	if err != nil {
		return -100
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	for _, line := range strings.Split(buf.String(), "\n") {
		var n int
		if _, err := fmt.Sscanf(line, "crmlink_ari_inbound_connections %d", &n); err == nil {
			return n
		}
	}
	return -100
}

// callNotes lists the linkedids (uniq) of the incoming-call notes in the sandbox.
func callNotes(t *testing.T) []string {
	var created struct {
		Notes []struct {
			NoteType string `json:"note_type"`
			Params   struct {
				Uniq string `json:"uniq"`
			} `json:"params"`
		} `json:"notes"`
	}
	getJSON(t, sandbox+"/_sandbox/created", &created)
	var uniq []string
	for _, n := range created.Notes {
		if n.NoteType == "call_in" {
			uniq = append(uniq, n.Params.Uniq)
		}
	}
	return uniq
}

func healthz(base string) int {
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
}

// office phones: Anna (101) registered on each Asterisk, and each Asterisk's operator desk
// (100, the fallback), all on this host.
type phones struct {
	anna map[string]*siptest.Phone // by Asterisk
	desk map[string]*siptest.Phone
	call map[string]*siptest.Phone // the caller on the provider network, one per Asterisk
	// inboundCalls counts the calls placed to inboundExten: each must give one call note.
	inboundCalls atomic.Int64
}

func newPhones(t *testing.T, ctx context.Context) *phones {
	p := &phones{anna: map[string]*siptest.Phone{}, desk: map[string]*siptest.Phone{}, call: map[string]*siptest.Phone{}}
	for _, a := range asterisks {
		anna, err := siptest.NewPhone(ctx, siptest.PhoneOptions{User: "101", BindHost: office})
		require.NoError(t, err)
		t.Cleanup(func() { anna.Close() })
		testrig.WaitFor(t, 30*time.Second, "Anna registered on "+a.name, func() bool {
			res, err := anna.Register(ctx, "sip:"+a.office, 5*time.Minute)
			return err == nil && res.StatusCode == 200
		})
		desk, err := siptest.NewPhone(ctx, siptest.PhoneOptions{User: "100", BindHost: office, BindPort: a.deskPort})
		require.NoError(t, err)
		t.Cleanup(func() { desk.Close() })
		caller, err := siptest.NewPhone(ctx, siptest.PhoneOptions{User: clientNumber, BindHost: pstn})
		require.NoError(t, err)
		t.Cleanup(func() { caller.Close() })
		p.anna[a.name], p.desk[a.name], p.call[a.name] = anna, desk, caller
	}
	return p
}

// outcome is what one call got: the owner's phone rang, the desk rang, or neither.
type outcome string

const (
	toOwner   outcome = "owner"
	toDesk    outcome = "desk"
	toNowhere outcome = "nowhere"
)

type placed struct {
	pbx     string
	at      time.Time
	outcome outcome
	reason  string // the desk's X-CRMLINK-Reason and -Status: why the call fell back
	extra   int    // rings after the first: must stay 0
}

// The numbers the client calls: 300 is FastAGI through HAProxy, 800 Stasis(crmlink-inbound)
// over the ARI Outbound WebSocket each Asterisk opens to crmlink through HAProxy.
const (
	agiExten     = "300"
	inboundExten = "800"
)

// place calls the client's number exten on a, waits for the owner's or the desk's phone to
// ring, then hangs up and checks that nothing else rang for it.
func (p *phones) place(ctx context.Context, a pbx, exten string) placed {
	res := placed{pbx: a.name, at: time.Now(), outcome: toNowhere}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	call, err := p.call[a.name].Call(cctx, "sip:"+exten+"@"+a.trunk)
	if err != nil {
		return res
	}
	if exten == inboundExten {
		p.inboundCalls.Add(1)
	}
	select {
	case in := <-p.anna[a.name].Incoming():
		res.outcome = toOwner
		_ = in.Ringing()
	case in := <-p.desk[a.name].Incoming():
		res.outcome = toDesk
		res.reason = strings.Join([]string{in.Header("X-CRMLINK-Result"), in.Header("X-CRMLINK-Reason"), in.Header("X-CRMLINK-Status")}, " ")
		_ = in.Ringing()
	case <-call.Done():
	case <-cctx.Done():
	}
	_ = call.Hangup(cctx)
	select {
	case <-call.Done():
	case <-time.After(3 * time.Second):
	}
	// A second ring for the same call (the desk after the owner) would show up now.
	deadline := time.After(300 * time.Millisecond)
	for {
		select {
		case in := <-p.anna[a.name].Incoming():
			res.extra++
			_ = in.Reject(486)
		case in := <-p.desk[a.name].Incoming():
			res.extra++
			_ = in.Reject(486)
		case <-deadline:
			return res
		}
	}
}

// burst places calls back to back on every Asterisk at once until stop is closed.
func (p *phones) burst(ctx context.Context, exten string, stop <-chan struct{}) []placed {
	var mu sync.Mutex
	var all []placed
	var wg sync.WaitGroup
	for _, a := range asterisks {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := p.place(ctx, a, exten)
				mu.Lock()
				all = append(all, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(all, func(a, b placed) int { return a.at.Compare(b.at) })
	return all
}

func count(calls []placed, o outcome) int {
	n := 0
	for _, c := range calls {
		if c.outcome == o {
			n++
		}
	}
	return n
}

func assertOneOutcomeEach(t *testing.T, calls []placed) {
	t.Helper()
	for i, c := range calls {
		assert.NotEqual(t, toNowhere, c.outcome, "call %d on %s at %s rang nobody", i, c.pbx, c.at.Format("15:04:05.000"))
		assert.Zero(t, c.extra, "call %d on %s rang more than one phone", i, c.pbx)
	}
}

func TestCluster(t *testing.T) {
	// One cluster test at a time on a host: fixed addresses and names.
	defer testrig.Flock(t, "/tmp/crmlink-cluster-test.lock")()
	s := up(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ph := newPhones(t, ctx)
	// The subtests are registered here and run by sub.run in the order
	// CRMLINK_CLUSTER_ORDER names (cluster_order_test.go), each from a whole stack.
	sub := &subtests{s: s}

	sub.add("calls through both Asterisks reach the owner", func(t *testing.T) {
		for range 2 {
			for _, a := range asterisks {
				for _, exten := range []string{agiExten, inboundExten} {
					r := ph.place(ctx, a, exten)
					assert.Equal(t, toOwner, r.outcome, "a call to %s on %s (%s)", exten, a.name, r.reason)
					assert.Zero(t, r.extra)
				}
			}
		}
	})

	sub.add("a crmlink cut off from Redis steps aside for the other", func(t *testing.T) {
		s.docker("network", "disconnect", redisNet, prefix+"crmlink-1")
		cut := time.Now()
		testrig.WaitFor(t, 5*time.Second, "crmlink-1's /healthz 503", func() bool { return healthz(crmlinkURL["crmlink-1"]) == http.StatusServiceUnavailable })
		aside := time.Since(cut)
		t.Logf("crmlink-1 stepped aside %s after the cut", aside.Round(10*time.Millisecond))
		assert.Less(t, aside, 4*time.Second)
		assert.Equal(t, http.StatusOK, healthz(crmlinkURL["crmlink-2"]), "crmlink-2 still reaches Redis")
		waitInPool(t, "crmlink-1", "DOWN")
		t.Logf("out of HAProxy's pool %s after the cut", time.Since(cut).Round(10*time.Millisecond))
		for range 3 {
			for _, a := range asterisks {
				r := ph.place(ctx, a, agiExten)
				assert.Equal(t, toOwner, r.outcome, "a call on %s while crmlink-1 is cut off (%s)", a.name, r.reason)
			}
		}
		s.docker("network", "connect", "--ip", "172.31.20.31", redisNet, prefix+"crmlink-1")
		testrig.WaitFor(t, 10*time.Second, "crmlink-1 back", func() bool { return healthz(crmlinkURL["crmlink-1"]) == http.StatusOK })
		waitInPool(t, "crmlink-1", "UP")
	})

	sub.add("a crmlink killed during a call burst", func(t *testing.T) {
		calls, killed := burstThroughAKill(ctx, t, s, ph, "crmlink-1", agiExten, "")
		before := 0
		for _, c := range calls {
			if c.at.Before(killed) && c.outcome == toOwner {
				before++
			}
		}
		assert.Positive(t, before, "calls before the kill reached the owner")
		s.docker("start", prefix+"crmlink-1")
		testrig.WaitFor(t, 60*time.Second, "crmlink-1 restarted", func() bool { return healthz(crmlinkURL["crmlink-1"]) == http.StatusOK })
		waitInPool(t, "crmlink-1", "UP")
	})

	sub.add("the Redis master killed during a webhook burst", func(t *testing.T) {
		master := s.redisMaster()
		accepted, refused := s.jivoBurst(t, 500, func() {
			s.docker("kill", "-s", "KILL", prefix+master)
			t.Logf("killed the Redis master %s", master)
		})
		testrig.WaitFor(t, 60*time.Second, "a replica promoted", func() bool { return s.redisMaster() != master })
		t.Logf("%d of 500 webhooks accepted, %d sends refused or unanswered during the failover and sent again; new master %s",
			len(accepted), refused, s.redisMaster())
		assert.Len(t, accepted, 500, "every webhook is accepted in the end")
		// An instance dies with events in hand: the other claims them once they have been
		// idle for ClaimMinIdle (30 s) and each is still processed once.
		time.Sleep(5 * time.Second)
		var stats struct {
			InFlight  int `json:"in_flight"`
			Processed int `json:"processed"`
		}
		getJSON(t, crmlinkURL["crmlink-1"]+"/v1/queue/stats", &stats)
		s.docker("kill", "-s", "KILL", prefix+"crmlink-2")
		t.Logf("killed crmlink-2 with %d events in flight in the group, %d processed", stats.InFlight, stats.Processed)
		defer func() {
			s.docker("start", prefix+"crmlink-2")
			testrig.WaitFor(t, 60*time.Second, "crmlink-2 restarted", func() bool { return healthz(crmlinkURL["crmlink-2"]) == http.StatusOK })
			waitInPool(t, "crmlink-2", "UP")
		}()
		start := time.Now()
		defer func() {
			t.Logf("the sandbox had every contact %s after the burst", time.Since(start).Round(time.Second))
		}()
		var created struct {
			Contacts []struct{ Name string } `json:"contacts"`
		}
		testrig.WaitFor(t, 8*time.Minute, "every accepted webhook's contact in the sandbox", func() bool {
			getJSON(t, sandbox+"/_sandbox/created", &created)
			have := map[string]bool{}
			for _, c := range created.Contacts {
				have[c.Name] = true
			}
			for name := range accepted {
				if !have[name] {
					return false
				}
			}
			return true
		})
		seen := map[string]int{}
		for _, c := range created.Contacts {
			seen[c.Name]++
		}
		for name := range accepted {
			assert.Equal(t, 1, seen[name], "contact %s created once", name)
		}
		s.logAdopted(t)
	})

	sub.add("the crmlink holding the Asterisks' ARI websockets killed during a call burst", func(t *testing.T) {
		// Both Asterisks are connected, to one crmlink or to both: kill one that holds a
		// connection; the Asterisks must reconnect through HAProxy to the other.
		testrig.WaitFor(t, 10*time.Second, "both Asterisks connected", func() bool {
			return inboundConns("crmlink-1")+inboundConns("crmlink-2") == 2
		})
		victim, other := "crmlink-1", "crmlink-2"
		if inboundConns(victim) == 0 {
			victim, other = other, victim
		}
		t.Logf("%s holds %d Asterisk connections, %s %d", victim, inboundConns(victim), other, inboundConns(other))
		burstThroughAKill(ctx, t, s, ph, victim, inboundExten, "ARI: ")
		assert.Equal(t, 2, inboundConns(other), "both Asterisks reconnected to %s", other)
		// The ARI calls' notes (the observer's, of the FastAGI calls, left out): one call
		// note each, the killed instance's queued ones taken over by the other. They are
		// claimed once idle for 30 s (plus up to 15 s of the claim ticker), and all the
		// calls are one client's, so their notes are written one after another.
		want := int(ph.inboundCalls.Load())
		waited := time.Now()
		testrig.WaitFor(t, 3*time.Minute, fmt.Sprintf("%d call notes", want), func() bool { return len(stasisCallNotes(t, s)) >= want })
		took := time.Since(waited)
		time.Sleep(2 * time.Second) // a second note for a call would come now
		notes := stasisCallNotes(t, s)
		t.Logf("%d ARI calls, %d call notes, the last %s after the burst", want, len(notes), took.Round(time.Second))
		seen := map[string]int{}
		for _, u := range notes {
			seen[u]++
		}
		assert.Len(t, seen, want, "one call note per call, each with its own linkedid")
		for u, n := range seen {
			assert.Equal(t, 1, n, "call %s noted once", u)
		}
		s.docker("start", prefix+victim)
		testrig.WaitFor(t, 60*time.Second, victim+" restarted", func() bool { return healthz(crmlinkURL[victim]) == http.StatusOK })
		waitInPool(t, victim, "UP")
	})

	testObserver(ctx, sub, s, ph)

	sub.run(t)

	var limited map[string]int
	getJSON(t, sandbox+"/_sandbox/rate-limited", &limited)
	assert.Zero(t, limited["rate_limited"], "amoCRM answered 429: the instances together went past 7 requests in a second")
}

// redisMaster asks a live Sentinel which Redis server is the master; "" when none answers.
func (s *stack) redisMaster() string {
	for _, sentinel := range []string{"sentinel-1", "sentinel-2", "sentinel-3"} {
		out, err := testrig.Exec(s.t, "", 10*time.Second, "docker", "exec", prefix+sentinel,
			"redis-cli", "-p", "26379", "sentinel", "get-master-addr-by-name", "crmlink")
		if err == nil {
			if name := redisIP[strings.TrimSpace(strings.Split(out, "\n")[0])]; name != "" {
				return name
			}
		}
	}
	return ""
}

// jivoBurst posts n Jivo chat_accepted webhooks, each a new visitor, through HAProxy from
// 20 senders, calling mid once a fifth are answered. A sender whose webhook is refused or
// unanswered sends it again after 200 ms, as a webhook platform retries, for up to a
// minute; it returns the visitors whose webhook was answered 2xx and how many sends were
// refused.
func (s *stack) jivoBurst(t *testing.T, n int, mid func()) (map[string]bool, int) {
	var mu sync.Mutex
	accepted := map[string]bool{}
	var answered, refused atomic.Int64
	var once sync.Once
	jobs := make(chan int)
	var wg sync.WaitGroup
	run := time.Now().UnixNano() % 1_000_000
	for range 20 {
		wg.Go(func() {
			for i := range jobs {
				name := fmt.Sprintf("Visitor %d-%d", run, i)
				body, _ := json.Marshal(map[string]any{
					"event_name": "chat_accepted", "chat_id": run*1000 + int64(i), "widget_id": "w-main",
					"visitor": map[string]any{"name": name, "phone": fmt.Sprintf("+7926%07d", int64(i)+run%1000*1000)},
					"agent":   map[string]any{"id": 77, "name": "Jivo agent"},
					"page":    map[string]string{"url": "https://shop.example/catalog", "title": "Catalog"},
				})
				for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
					resp, err := client.Post(haproxy+"/v1/chat/jivo/"+jivoToken, "application/json", bytes.NewReader(body))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode/100 == 2 {
							mu.Lock()
							accepted[name] = true
							mu.Unlock()
							break
						}
					}
					refused.Add(1)
				}
				if answered.Add(1) == int64(n/5) {
					once.Do(mid)
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return accepted, int(refused.Load())
}

// burstThroughAKill places calls through exten on both Asterisks while the crmlink named
// victim is killed (kill -9) 3 s into the burst, checks each call has one outcome, logs the
// failover window (the last call after the kill that did not reach the owner) and holds it
// to 2 s. It returns the calls and when the kill came.
func burstThroughAKill(ctx context.Context, t *testing.T, s *stack, ph *phones, victim, exten, label string) ([]placed, time.Time) {
	t.Helper()
	stop := make(chan struct{})
	var killed time.Time
	go func() {
		time.Sleep(3 * time.Second)
		killed = time.Now()
		s.docker("kill", "-s", "KILL", prefix+victim)
		time.Sleep(8 * time.Second)
		close(stop)
	}()
	calls := ph.burst(ctx, exten, stop)
	require.NotEmpty(t, calls)
	assertOneOutcomeEach(t, calls)
	window := time.Duration(0)
	for _, c := range calls {
		if c.outcome != toOwner && c.at.After(killed) {
			window = max(window, c.at.Sub(killed))
			t.Logf("after the kill: a call on %s at +%s went to the %s (%s)", c.pbx, c.at.Sub(killed).Round(10*time.Millisecond), c.outcome, c.reason)
		}
	}
	t.Logf("%s%d calls: %d to the owner, %d to the desk; failover window %s (the last call not routed started that long after the kill)",
		label, len(calls), count(calls, toOwner), count(calls, toDesk), window.Round(10*time.Millisecond))
	logKillWindow(t, label, calls, killed)
	assert.LessOrEqual(t, window, 2*time.Second, "calls fall back for at most 2 s after a crash")
	return calls, killed
}
