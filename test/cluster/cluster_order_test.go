package cluster

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crmlink/crmlink/internal/testrig"
)

// subtests are TestCluster's subtests, run in the order CRMLINK_CLUSTER_ORDER names, each
// on a whole stack: whatever an earlier one killed or cut off is started and reconnected
// first (wholeStack), so no subtest depends on which ran before it.
//
// CRMLINK_CLUSTER_ORDER is one of
//
//	""          defaultOrder: the ARI kill before the Redis master's (the order that once
//	            created Jivo contacts twice, see the Redis subtest)
//	registered  the order TestCluster registers them in
//	reverse     the reverse of that
//	shuffle     a random order (its seed logged); shuffle:<seed> repeats one
//	1,5,4,2,3,6,7 the registered subtests by number, from 1
type subtests struct {
	s    *stack
	list []subtest
}

type subtest struct {
	name string
	f    func(t *testing.T)
}

// defaultOrder, by registered number: the first calls, the ARI holder killed, the Redis
// master killed and a crmlink killed holding events, the partition, the FastAGI kill, the
// observed calls, the observer's holder killed.
var defaultOrder = []int{1, 5, 4, 2, 3, 6, 7}

func (ts *subtests) add(name string, f func(t *testing.T)) {
	ts.list = append(ts.list, subtest{name, f})
}

// run runs the subtests in the configured order, each after wholeStack.
func (ts *subtests) run(t *testing.T) {
	order, err := ts.order(os.Getenv("CRMLINK_CLUSTER_ORDER"))
	if err != nil {
		t.Fatalf("CRMLINK_CLUSTER_ORDER: %v", err)
	}
	var names []string
	for _, i := range order {
		names = append(names, fmt.Sprintf("%d %q", i+1, ts.list[i].name))
	}
	t.Logf("subtests in this order: %s", strings.Join(names, ", "))
	for _, i := range order {
		ts.s.wholeStack(t)
		t.Run(ts.list[i].name, ts.list[i].f)
	}
}

// order reads CRMLINK_CLUSTER_ORDER into indexes of ts.list.
func (ts *subtests) order(spec string) ([]int, error) {
	n := len(ts.list)
	registered := make([]int, n)
	for i := range registered {
		registered[i] = i
	}
	pick := func(numbers []int) ([]int, error) {
		var out []int
		for _, k := range numbers {
			if k < 1 || k > n || slices.Contains(out, k-1) {
				return nil, fmt.Errorf("%v: want each of 1..%d at most once", numbers, n)
			}
			out = append(out, k-1)
		}
		return out, nil
	}
	switch {
	case spec == "":
		if len(defaultOrder) != n {
			return registered, nil // a subtest added since: registered order
		}
		return pick(defaultOrder)
	case spec == "registered":
		return registered, nil
	case spec == "reverse":
		slices.Reverse(registered)
		return registered, nil
	case spec == "shuffle" || strings.HasPrefix(spec, "shuffle:"):
		seed := uint64(time.Now().UnixNano())
		if s, ok := strings.CutPrefix(spec, "shuffle:"); ok {
			var err error
			if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
				return nil, fmt.Errorf("shuffle seed %q: %w", s, err)
			}
		}
		fmt.Fprintf(os.Stderr, "cluster: CRMLINK_CLUSTER_ORDER=shuffle:%d\n", seed)
		rand.New(rand.NewPCG(seed, seed)).Shuffle(n, func(i, j int) { registered[i], registered[j] = registered[j], registered[i] })
		return registered, nil
	}
	var numbers []int
	for _, f := range strings.Split(spec, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not registered, reverse, shuffle or a list of numbers", spec)
		}
		numbers = append(numbers, k)
	}
	return pick(numbers)
}

// wholeStack starts every container of the stack a subtest killed (a crmlink, the old
// Redis master, which rejoins as a replica), reconnects a crmlink a subtest cut off from
// Redis, and waits until both crmlinks are healthy and in HAProxy's pool, both Asterisks
// hold their ARI websockets and the Sentinels name a master.
func (s *stack) wholeStack(t *testing.T) {
	t.Helper()
	start := time.Now()
	exited := s.docker("ps", "-a", "--filter", "label=com.docker.compose.project="+project,
		"--filter", "status=exited", "--format", "{{.Names}}")
	for _, name := range strings.Fields(exited) {
		t.Logf("starting %s, which an earlier subtest stopped", name)
		s.docker("start", name)
	}
	for name, ip := range map[string]string{"crmlink-1": "172.31.20.31", "crmlink-2": "172.31.20.32"} {
		nets := s.docker("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", prefix+name)
		if !slices.Contains(strings.Fields(nets), redisNet) {
			t.Logf("reconnecting %s to Redis", name)
			s.docker("network", "connect", "--ip", ip, redisNet, prefix+name)
		}
	}
	for name, u := range crmlinkURL {
		testrig.WaitFor(t, 90*time.Second, name+" healthy", func() bool { return healthz(u) == http.StatusOK })
		waitInPool(t, name, "UP")
	}
	testrig.WaitFor(t, 30*time.Second, "both Asterisks' ARI websockets connected", func() bool {
		return inboundConns("crmlink-1")+inboundConns("crmlink-2") == 2
	})
	testrig.WaitFor(t, 30*time.Second, "a Redis master", func() bool { return s.redisMaster() != "" })
	if d := time.Since(start); d > time.Second {
		t.Logf("the stack whole again in %s", d.Round(100*time.Millisecond))
	}
}

// logKillWindow logs how densely calls tested the 2 s after a kill: how many started in
// them and how many of those fell back, and the last call that fell back, from the kill.
func logKillWindow(t *testing.T, label string, calls []placed, killed time.Time) {
	t.Helper()
	in, fell := 0, 0
	var last time.Duration = -1
	for _, c := range calls {
		after := c.at.Sub(killed)
		if after >= 0 && after <= 2*time.Second {
			in++
			if c.outcome != toOwner {
				fell++
			}
		}
		if after >= 0 && c.outcome != toOwner {
			last = max(last, after)
		}
	}
	lastFell := "none fell back"
	if last >= 0 {
		lastFell = fmt.Sprintf("the last that fell back started %s after it", last.Round(10*time.Millisecond))
	}
	t.Logf("%s%d calls started in the 2 s after the kill, %d fell back; %s", label, in, fell, lastFell)
}

// logAdopted logs how many steps the crmlinks found in amoCRM instead of writing them again
// (chatbridge/intake's log line): the writes a killed instance made without recording them.
func (s *stack) logAdopted(t *testing.T) {
	t.Helper()
	n := 0
	for name := range crmlinkURL {
		out, err := testrig.Exec(t, "", time.Minute, "docker", "logs", prefix+name)
		if err != nil {
			t.Logf("docker logs %s: %v", name, err)
			continue
		}
		n += strings.Count(out, "not writing it again")
	}
	t.Logf("%d steps a killed crmlink had written to amoCRM without recording them were found there and not written again", n)
}
