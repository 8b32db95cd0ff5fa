package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/config"
)

func TestParseRTT(t *testing.T) {
	in := "Date_ms;response_time_ms;rtd_no\n56.001;4;1\n108.001;12;1\n110.5;3;2\nbad;x;1\n"
	at, times, err := parseRTT(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(times) != 2 || times[0] != 4 || times[1] != 12 || at[1] != 108.001 {
		t.Fatalf("got at %v times %v; want rtd 1 only: [56.001 108.001] [4 12]", at, times)
	}
}

func TestStatRows(t *testing.T) {
	in := "StartTime;TotalCallCreated;SuccessfulCall(C);FailedCall(C);\n" +
		"x;0;0;0;\n" +
		"x;100;97;3;\n"
	h, last, err := statRows(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if h[1] != "TotalCallCreated" || last[1] != "100" || last[3] != "3" {
		t.Fatalf("header %v last %v", h, last)
	}
	if _, _, err := statRows(strings.NewReader("only;a;header\n")); err == nil {
		t.Fatal("a file with no row must be an error")
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3, 10, 6, 7, 8, 9}
	for _, c := range []struct{ p, want float64 }{{50, 5}, {95, 10}, {99, 10}, {10, 1}, {100, 10}} {
		if got := percentile(v, c.p); got != c.want {
			t.Errorf("p%v = %v; want %v", c.p, got, c.want)
		}
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("percentile of nothing must be NaN")
	}
}

func TestAnswerRate(t *testing.T) {
	// 101 answers 10 ms apart: 100/s.
	var at []float64
	for i := range 101 {
		at = append(at, float64(i*10))
	}
	if got := answerRate(at); math.Abs(got-100) > 0.01 {
		t.Fatalf("answerRate = %v; want 100", got)
	}
	// A slow first and last answer do not change the pace.
	at[0], at[100] = -500, 3000
	if got := answerRate(at); math.Abs(got-100) > 0.01 {
		t.Fatalf("answerRate with outliers = %v; want 100", got)
	}
}

func TestParseMetrics(t *testing.T) {
	in := `# HELP go_goroutines Number of goroutines.
go_goroutines 42
crmlink_route_decisions_total{reason="",result="ROUTED",source="cache"} 90
crmlink_route_decisions_total{reason="timeout",result="FALLBACK",source="crm"} 7
crmlink_route_decisions_total{reason="not_found",result="FALLBACK",source="crm"} 3
crmlink_route_decision_seconds_sum{source="cache"} 0.05
`
	m, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if m.Value("go_goroutines") != 42 {
		t.Errorf("goroutines %v", m.Value("go_goroutines"))
	}
	if got := m.Sum("crmlink_route_decisions_total", nil); got != 100 {
		t.Errorf("all decisions %v; want 100", got)
	}
	if got := m.Sum("crmlink_route_decisions_total", map[string]string{"result": "FALLBACK"}); got != 10 {
		t.Errorf("fallbacks %v; want 10", got)
	}
	by := m.By("crmlink_route_decisions_total", "source")
	if by["cache"] != 90 || by["crm"] != 10 {
		t.Errorf("by source %v", by)
	}
	d := m.delta(Metrics{"go_goroutines": 40})
	if d.Value("go_goroutines") != 2 {
		t.Errorf("delta %v", d.Value("go_goroutines"))
	}
	if r := fallbackReasons(m); r["timeout"] != 7 || r["not_found"] != 3 {
		t.Errorf("reasons %v", r)
	}
}

func TestSplitSampleEscapes(t *testing.T) {
	name, labels := splitSample(`x{a="q\"uote",b="2"}`)
	if name != "x" || labels["a"] != `q"uote` || labels["b"] != "2" {
		t.Fatalf("%q %v", name, labels)
	}
}

func TestParseStatCPU(t *testing.T) {
	// pid (comm with spaces) state ppid ... utime(14)=250 stime(15)=50
	stat := "123 (crm link) S 1 1 1 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 10 0 1000 1000 100"
	if got := parseStatCPU([]byte(stat)); got != 3 {
		t.Fatalf("cpu %v s; want 3", got)
	}
}

// search on a path whose capacity is cap: a rate passes when it is at most cap.
func searchWith(p Plan, fixed []int, capacity, rateCap int) (int, []int) {
	seen := map[int]bool{}
	for _, r := range fixed {
		seen[r] = r <= capacity
	}
	var tried []int
	best := p.search(seen, rateCap, 0, 0, func(r int) bool { tried = append(tried, r); return r <= capacity })
	return best, tried
}

func TestPlanSearch(t *testing.T) {
	p := FullPlan()
	for _, c := range []struct {
		name      string
		fixed     []int
		capacity  int
		wantAbove int // the result is at least this and at most capacity
	}{
		{"grows past every fixed rate", []int{20, 50, 100, 200}, 290, 260},
		{"between two fixed rates", []int{20, 50, 100, 200}, 70, 60},
		{"below every fixed rate", []int{20, 50, 100, 200}, 3, 3},
		{"nothing passes", []int{20, 50, 100, 200}, 0, 0},
	} {
		got, tried := searchWith(p, c.fixed, c.capacity, 1000)
		if got < c.wantAbove || got > c.capacity {
			t.Errorf("%s: search found %d (tried %v); want %d..%d", c.name, got, tried, c.wantAbove, c.capacity)
		}
		if len(tried) > p.RampSteps {
			t.Errorf("%s: %d steps; the budget is %d", c.name, len(tried), p.RampSteps)
		}
	}
	// The cap bounds the growth.
	if got, tried := searchWith(p, []int{20, 100}, 10000, 120); got != 100 || len(tried) != 0 {
		t.Errorf("capped search: %d after %v; want 100 with no step over the cap", got, tried)
	}
}

func TestPlanCalls(t *testing.T) {
	p := FullPlan()
	if n := p.calls(100, 5*time.Second); n != 500 {
		t.Errorf("100/s for 5 s: %d calls", n)
	}
	if n := p.calls(2, 4*time.Second); n != 30 {
		t.Errorf("2/s: %d calls; want the minimum of 30 (15 s, the longest step)", n)
	}
	if n := p.calls(1, 4*time.Second); n != 15 {
		t.Errorf("1/s: %d calls; want 15, capped by the 15 s step", n)
	}
}

func TestARIRoute(t *testing.T) {
	for in, want := range map[string]string{
		"/ari/channels/1795.12/variable":            "/ari/channels/{id}/variable",
		"/ari/channels":                             "/ari/channels",
		"/ari/bridges/crmlink-br-ab/addChannel":     "/ari/bridges/{id}/addChannel",
		"/ari/endpoints/PJSIP/bench-mgr1":           "/ari/endpoints/PJSIP/bench-mgr1",
		"/ari/applications/crmlink-bench":           "/ari/applications/crmlink-bench",
		"/ari/channels/crmlink-leg-0011223344/ring": "/ari/channels/{id}/ring",
	} {
		if got := ariRoute(in); got != want {
			t.Errorf("ariRoute(%q) = %q; want %q", in, got, want)
		}
	}
}

// A call's own ARI requests, over HTTP or the websocket, are told from the reconciler's and
// the connection's, which the census spreads over the calls.
func TestCallRequests(t *testing.T) {
	census := map[string]float64{
		"WS POST /ari/applications/crmlink-bench/subscription": 1, "WS POST /ari/channels/{id}/variable": 1,
		"WS POST /ari/channels/{id}/continue": 1, "POST /ari/channels/{id}/answer": 1,
		"WS GET /ari/channels": 0.4, "GET /ari/bridges": 0.4, "WS GET /ari/endpoints": 0.4, "GET /ari/events": 0.05,
		"WS GET /ari/applications/crmlink-bench": 0.45, "PUT /ari/applications/crmlink-bench/eventFilter": 0.05,
		"WS GET /ari/endpoints/PJSIP/bench-mgr1": 0.5,
	}
	if got := callRequests(census); got != 4.5 {
		t.Fatalf("callRequests = %v; want 4.5 (the endpoint asked about for a call counts)", got)
	}
}

func TestReadFrame(t *testing.T) {
	short := []byte(`{"type":"StasisStart"}`)
	long := bytes.Repeat([]byte("x"), 300)
	var stream []byte
	stream = append(stream, 0x81, byte(len(short)))
	stream = append(stream, short...)
	stream = append(stream, 0x81, 126, byte(len(long)>>8), byte(len(long)))
	stream = append(stream, long...)
	br := bufio.NewReader(bytes.NewReader(stream))
	frame, op, payload, err := readFrame(br)
	if err != nil || op != 1 || string(payload) != string(short) || len(frame) != 2+len(short) {
		t.Fatalf("first frame: op %d payload %q err %v", op, payload, err)
	}
	frame, _, payload, err = readFrame(br)
	if err != nil || len(payload) != 300 || len(frame) != 4+300 {
		t.Fatalf("second frame: %d bytes, err %v", len(payload), err)
	}
	if _, _, _, err := readFrame(br); err != io.EOF {
		t.Fatalf("after the last frame: %v; want EOF", err)
	}
}

func TestParseGoBench(t *testing.T) {
	in := `goos: linux
BenchmarkDecideCached-2                  	  128636	      2474 ns/op	     688 B/op	       9 allocs/op
BenchmarkDecideConcurrentOneNumber-2     	    8662	     42066 ns/op	         0.03152 crm-req/op	    1147 B/op	      15 allocs/op
PASS
`
	got := parseGoBench(strings.NewReader(in), "routing")
	if len(got) != 2 || got[0].Name != "BenchmarkDecideCached" || got[0].Values["ns/op"] != 2474 || got[1].Values["crm-req/op"] != 0.03152 {
		t.Fatalf("%+v", got)
	}
}

// The generated configuration is one crmlink accepts: the keys the benchmark writes are
// crmlink's.
func TestCrmlinkConfigValid(t *testing.T) {
	for _, c := range []CrmlinkConfig{
		{HTTPPort: 18080, DataDir: t.TempDir(), CRMURL: "http://127.0.0.1:8099", CRMRateLimit: 7},
		{HTTPPort: 18080, DataDir: t.TempDir(), CRMURL: "http://127.0.0.1:8099", CRMRateLimit: 7, Transport: "http", Ringing: "bridge"},
		{HTTPPort: 18080, DataDir: t.TempDir(), AGI: true, Redirect: true, Redis: true, CRMURL: "http://127.0.0.1:8099", CRMRateLimit: 50,
			ARIURL: "http://127.0.0.1:9999/ari", WSURL: "ws://127.0.0.1:9999/ari/events"},
	} {
		cfg, err := config.Parse([]byte(c.YAML()))
		if err != nil {
			t.Fatalf("%v\n%s", err, c.YAML())
		}
		if errs := cfg.Validate(); len(errs) > 0 {
			t.Fatalf("%v\n%s", errs, c.YAML())
		}
		if cfg.Asterisk.ARI.Application != benchApp || cfg.AGI.Enabled != c.AGI || cfg.SIP.Enabled != c.Redirect ||
			len(cfg.Redis.Addrs) > 0 != c.Redis || cfg.Routing.RingTimeout != 5*time.Second || len(cfg.Managers) != 2 {
			t.Fatalf("config read back differs: %+v", cfg)
		}
	}
}

// The seed is one the sandbox accepts, and each caller number is on exactly one card.
func TestBenchSeed(t *testing.T) {
	s := benchSeed(50)
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sandbox.ParseSeed(data); err != nil {
		t.Fatalf("sandbox refuses the seed: %v", err)
	}
	seen := map[string]bool{}
	for _, c := range s.Contacts {
		d := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, c.Phones[0])
		if len(d) != 11 || seen[d] {
			t.Fatalf("card phone %q: %d digits, seen before %v", c.Phones[0], len(d), seen[d])
		}
		seen[d] = true
	}
	for _, n := range []string{cachedNumber(0), indexedNumber(9), coldNumber(49)} {
		if !seen[n] {
			t.Errorf("caller %s is on no card", n)
		}
	}
}

func TestReportRenders(t *testing.T) {
	step := func(rate int, p50, p99 float64, pass bool) Step {
		return Step{Phase: "fixed", Rate: rate, Calls: rate * 5, Successful: rate * 5, P50: p50, P95: p99, P99: p99, Answered: float64(rate),
			CPUms: map[string]float64{"asterisk": 5, "crmlink": 2}, Pass: pass, Decisions: rate * 5}
	}
	base := PathResult{Name: "baseline", Title: "static", Via: "asterisk", MaxRate: 280,
		Steps: []Step{step(20, 4, 8, true), step(100, 4, 8, true), step(300, 200, 900, false)}}
	base.At100 = &base.Steps[1]
	ari := PathResult{Name: "ari-cached", Title: "ARI & <cached>", Via: "ari", MaxRate: 60, RSSBytes: 30 << 20,
		Steps: []Step{step(20, 8, 16, true), step(100, 250, 1900, false)}}
	ari.At100 = &ari.Steps[1]
	rep := &Report{Started: time.Now(), Plan: FullPlan(), Paths: []PathResult{base, ari}, Machine: Machine{Cores: 2}}
	compare(rep, &rep.Paths[0])
	if p := rep.Paths[1]; p.P99Ratio != 237.5 || len(p.Flags) != 2 {
		t.Fatalf("ratios %+v flags %v", p.P99Ratio, p.Flags)
	}
	md := rep.Markdown()
	for _, want := range []string{"| baseline | 4 / 8 / 8 | 280 |", "| ari-cached | 250 / 1900 / 1900 | 60 |", "237.50x", "Over issue 7's thresholds"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	dec := xml.NewDecoder(strings.NewReader(rep.SVG()))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
	}
}

// An ARI path is explained by its CPU per call against the baseline's at the same rate, and
// its latency read against the baseline's step nearest to the same machine load.
func TestVersusBaseline(t *testing.T) {
	base := PathResult{Name: "baseline", Via: "asterisk", Steps: []Step{
		{Rate: 100, P99: 8, Pass: true, CPUms: map[string]float64{"asterisk": 5, "sipp-uac": 0.5, "sipp-uas": 0.5}},
		{Rate: 200, P99: 148, Pass: true, CPUms: map[string]float64{"asterisk": 5, "sipp-uac": 0.5, "sipp-uas": 0.5}},
	}}
	ari := PathResult{Name: "ari-cached", Via: "ari", MaxRate: 100, Steps: []Step{
		{Rate: 100, P99: 104, Pass: true, CPUms: map[string]float64{"crmlink": 4, "asterisk": 7, "sipp-uac": 0.5, "sipp-uas": 0.5}},
	}}
	got := versusBaseline(ari, &base)
	for _, want := range []string{"at 100 calls/s", "Asterisk 7.0 ms", "5.0 ms in the baseline", "+2.0 ms", "crmlink 4.0 ms",
		"12.0 ms in all against 6.0, 2.00x", "about 200 calls/s", "p99 was 148 ms (its step at 200/s) against 8 ms at 100/s", "bounds the rate"} {
		if !strings.Contains(got, want) {
			t.Errorf("versusBaseline: %q lacks %q", got, want)
		}
	}
	if s := versusBaseline(base, &base); s != "" {
		t.Errorf("the baseline against itself: %q", s)
	}
	if s := versusBaseline(PathResult{Name: "redirect", Via: "sip-redirect", Steps: ari.Steps}, &base); s != "" {
		t.Errorf("a path without Asterisk: %q", s)
	}
	if s := versusBaseline(ari, nil); s != "" {
		t.Errorf("no baseline: %q", s)
	}
}

// The parts of crmlink's work are read from pprof's cumulative listing; net/http's
// connection loops count with the requests.
func TestProfileParts(t *testing.T) {
	lines := []string{
		"0     0%     0%      0.85s 29.62%  pbx/ari.(*call).run",
		"0.02s   0.7% 43.90%      0.47s 16.38%  pbx/ari.(*restClient).begin",
		"0     0% 44.25%      0.45s 15.68%  pbx/ari.(*socket).read",
		"0     0% 44.25%      0.44s 15.33%  net/http.(*persistConn).writeLoop",
		"0     0% 44.95%      0.34s 11.85%  net/http.(*persistConn).readLoop",
		"0     0% 45.30%      0.30s 10.45%  events.(*Outbox).CallOutcome",
		"not a pprof line",
	}
	got := profileParts(lines)
	want := []ProfilePart{
		{Part: profilePartFrames[0].part, Percent: 43.56},
		{Part: profilePartFrames[1].part, Percent: 15.68},
		{Part: profilePartFrames[3].part, Percent: 10.45},
	}
	if len(got) != len(want) {
		t.Fatalf("profileParts = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Part != want[i].Part || math.Abs(got[i].Percent-want[i].Percent) > 0.001 {
			t.Errorf("part %d = %v, want %v", i, got[i], want[i])
		}
	}
}
