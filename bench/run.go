package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options configure a benchmark run.
type Options struct {
	Root     string // the repository: bin/, bench/sipp/
	Out      string // the results directory
	Quick    bool
	LockPath string
	Only     []string // path names; empty: every path of the mode
	GoBench  bool
	// Profile adds a profiling run to the paths that have one: crmlink-pprof in place of
	// crmlink at ProfileRate, its CPU profile summarised in the report.
	Profile bool
	// OwnConf: each stretch, inside its hold of the rig lock, restarts the rig's Asterisk
	// with this checkout's asterisk-conf/ (docker/rig.sh restart-asterisk) when the one
	// running reads another (a branch that changed the rig's dialplan, on a rig shared
	// with other checkouts).
	OwnConf bool
	// CPUFor, when set, replaces the plan with one step per path at cpuRate offered this
	// long, and no search: the CPU per call of each path, from many calls.
	CPUFor time.Duration
	Log    func(format string, args ...any)
}

// cpuRate is the rate of a CPU-only run (Options.CPUFor): the reference rate of the ratios.
const cpuRate = 100

// Step is one rate offered to one path.
type Step struct {
	Phase      string  `json:"phase"` // fixed or search
	Rate       int     `json:"rate"`  // offered calls/s
	Calls      int     `json:"calls"` // calls sipp created
	Successful int     `json:"successful"`
	Failed     int     `json:"failed"`
	Answered   float64 `json:"answered_per_s"` // answers per second over the step
	P50        float64 `json:"p50_ms"`
	P95        float64 `json:"p95_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	Retrans    int     `json:"retransmissions"`
	// crmlink's decisions during the step, from its /metrics.
	Decisions    int            `json:"decisions,omitempty"`
	Fallbacks    int            `json:"fallbacks,omitempty"`
	Reasons      map[string]int `json:"fallback_reasons,omitempty"`
	Sources      map[string]int `json:"sources,omitempty"`
	DecideMeanUS float64        `json:"decide_mean_us,omitempty"`
	// Outcomes is how many finished calls crmlink recorded during the step (its
	// crmlink_calls_total): with the observer, the calls it observed.
	Outcomes int `json:"outcomes,omitempty"`
	// CPU is each process's CPU time per call, ms; MachineBusy the share of both cores busy.
	CPUms       map[string]float64 `json:"cpu_ms_per_call"`
	MachineBusy float64            `json:"machine_busy"`
	// OtherCores is how many cores processes outside the benchmark kept busy meanwhile
	// (the machine is shared): a step with a high figure ran on a crowded machine.
	OtherCores float64 `json:"other_cores"`
	// Stuck is how many channels were still up 8 s after sipp's last call (past crmlink's
	// ring timer): calls crmlink lost track of, hung up by the benchmark.
	Stuck int `json:"channels_stuck,omitempty"`
	// Retried: the first try was not sustained while other work used the machine; this is
	// the second.
	Retried bool   `json:"retried,omitempty"`
	Pass    bool   `json:"sustained"`
	Why     string `json:"why,omitempty"` // why not sustained
	Errors  string `json:"sipp_errors,omitempty"`
}

// PathResult is one path's steps and what they add up to.
type PathResult struct {
	Name    string `json:"name"`
	Title   string `json:"title"`
	Via     string `json:"via"`
	Note    string `json:"note"`
	Redis   bool   `json:"redis"`
	CRMRate int    `json:"crm_rate_limit,omitempty"`
	Steps   []Step `json:"steps"`
	// MaxRate is the highest rate sustained; 0 when none was.
	MaxRate int `json:"max_sustained_rate"`
	// At100 is the step at 100 calls/s (the reference rate for ratios), if run; At50 the
	// one at 50 calls/s, under the ARI paths' saturation.
	At100 *Step `json:"at_100,omitempty"`
	At50  *Step `json:"at_50,omitempty"`
	// crmlink at the end of the path.
	RSSBytes         int64 `json:"crmlink_rss_bytes,omitempty"`
	GoroutinesBefore int   `json:"crmlink_goroutines_before,omitempty"`
	Goroutines       int   `json:"crmlink_goroutines_end,omitempty"`
	// GoroutinesSettled is Goroutines once they stopped falling (at most 8 s later).
	GoroutinesSettled int            `json:"crmlink_goroutines_settled,omitempty"`
	CPUSeconds        float64        `json:"crmlink_cpu_seconds,omitempty"`
	CRMRequests       map[string]int `json:"crm_requests,omitempty"`
	// Census is crmlink's ARI requests per call by route, from the census run.
	Census       map[string]float64 `json:"ari_requests_per_call,omitempty"`
	CensusEvents map[string]float64 `json:"ari_events_per_call,omitempty"`
	CensusCalls  int                `json:"census_calls,omitempty"`
	// Ratios to the baseline of the same run.
	P50Ratio float64 `json:"p50_ratio_at_100,omitempty"`
	P99Ratio float64 `json:"p99_ratio_at_100,omitempty"`
	// P99Ratio50 is the p99 ratio at 50 calls/s.
	P99Ratio50 float64  `json:"p99_ratio_at_50,omitempty"`
	MaxRatio   float64  `json:"max_rate_ratio,omitempty"`
	Flags      []string `json:"flags,omitempty"`
	// Profile is the top of crmlink's CPU profile in the profiling run.
	Profile     []string `json:"crmlink_profile,omitempty"`
	ProfileFlat []string `json:"crmlink_profile_flat,omitempty"`
	ProfileRun  *Step    `json:"profile_run,omitempty"`
	// ProfileParts is the share of crmlink's profile (cumulative, %) in each part of its work.
	ProfileParts []ProfilePart `json:"crmlink_profile_parts,omitempty"`
	Error        string        `json:"error,omitempty"`
	Seconds      float64       `json:"seconds"`
	LockWait     float64       `json:"rig_lock_wait_seconds"`
	// Skipped are fixed rates not offered because a lower one already failed badly.
	Skipped []int `json:"skipped_fixed_rates,omitempty"`
}

// Report is a whole run.
type Report struct {
	Started time.Time    `json:"started"`
	Seconds float64      `json:"seconds"`
	Quick   bool         `json:"quick"`
	Machine Machine      `json:"machine"`
	Plan    Plan         `json:"plan"`
	Paths   []PathResult `json:"paths"`
	GoBench []GoBenchRun `json:"go_benchmarks,omitempty"`
	// CRMThroughput is the event path against amoCRM's rate limit (no calls placed).
	CRMThroughput *ThroughputReport `json:"crm_throughput,omitempty"`
	LockWait      float64           `json:"rig_lock_wait_seconds"`
	Criteria      map[string]any    `json:"criteria"`
}

// Machine says where the figures come from.
type Machine struct {
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"`
	MemoryMB int    `json:"memory_mb"`
	Kernel   string `json:"kernel"`
	Asterisk string `json:"asterisk"`
	Sipp     string `json:"sipp"`
	Go       string `json:"go"`
	Crmlink  string `json:"crmlink"`
	Rig      string `json:"rig"`
}

// Pass criteria of a step.
const (
	maxFailedShare   = 0.001 // failed calls
	maxFallbackShare = 0.001 // crmlink's fallbacks
	minAnsweredShare = 0.95  // answers per second against the offered rate
	maxP99ms         = 1000  // INVITE to answer, 99th percentile
	uasPort          = 5181  // the manager phones' sipp (asterisk-conf/pjsip.conf)
)

type runner struct {
	opts    Options
	plan    Plan
	rig     *Rig
	lock    *RigLock
	sandbox *Sandbox
	raw     string
	port    int    // next sipp UAC port
	pprof   string // the crmlink-pprof binary, when profiling
}

// profileRate and profileFor are the profiling run's load: steady, well under saturation,
// and long enough (750 calls, some 3 s of crmlink CPU at 100 Hz sampling) for the top of the
// profile to be more than a handful of 10 ms samples.
const (
	profileRate = 50
	profileFor  = 15 * time.Second
)

func (r *runner) say(format string, args ...any) {
	if r.opts.Log != nil {
		r.opts.Log(format, args...)
	}
}

// Run runs the benchmark and writes the report; the error is for what stopped it.
func Run(ctx context.Context, opts Options) (*Report, error) {
	start := time.Now()
	plan := FullPlan()
	if opts.Quick {
		plan = QuickPlan()
	}
	if opts.CPUFor > 0 {
		plan.Fixed, plan.FixedFor, plan.RampSteps, plan.MaxStep = []int{cpuRate}, opts.CPUFor, 0, opts.CPUFor
	}
	r := &runner{opts: opts, plan: plan, rig: NewRig(), lock: &RigLock{Path: opts.LockPath}, raw: filepath.Join(opts.Out, "bench-raw"), port: 5300}
	if err := os.RemoveAll(r.raw); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.raw, 0o755); err != nil {
		return nil, err
	}
	for _, bin := range []string{"bin/crmlink", "bin/amocrm-sandbox", "bench/sipp/uac.xml", "bench/sipp/redirect.xml"} {
		if _, err := os.Stat(filepath.Join(opts.Root, bin)); err != nil {
			return nil, fmt.Errorf("%s is missing (make build): %w", bin, err)
		}
	}
	if _, err := exec.LookPath("sipp"); err != nil {
		return nil, errors.New("sipp is not installed (Debian package sip-tester)")
	}
	if _, err := r.rig.Channels(ctx); err != nil {
		return nil, fmt.Errorf("the rig's Asterisk does not answer on ARI (make sandbox-up): %w", err)
	}
	rep := &Report{Started: start, Quick: opts.Quick, Plan: plan, Machine: r.machine(ctx), Criteria: map[string]any{
		"max_failed_share": maxFailedShare, "max_fallback_share": maxFallbackShare,
		"min_answered_share_of_rate": minAnsweredShare, "max_p99_ms": maxP99ms,
	}}

	if opts.GoBench {
		benchtime := "1s"
		if opts.Quick {
			benchtime = "200ms"
		}
		r.say("go benchmarks (-benchtime %s)", benchtime)
		dir := filepath.Join(r.raw, "go")
		_ = os.MkdirAll(dir, 0o755)
		rep.GoBench = runGoBenches(ctx, opts.Root, dir, benchtime)
	}

	needTwin := opts.Profile
	for _, p := range Paths() {
		needTwin = needTwin || (len(p.TwinArgs) > 0 && (slices.Contains(opts.Only, p.Name) || (len(opts.Only) == 0 && (p.Quick || !opts.Quick))))
	}
	if needTwin {
		r.pprof = filepath.Join(r.raw, "crmlink-pprof")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", r.pprof, "./bench/cmd/crmlink-pprof")
		cmd.Dir = opts.Root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return rep, fmt.Errorf("build crmlink-pprof: %v: %s", err, out)
		}
	}

	sb, err := StartSandbox(filepath.Join(opts.Root, "bin/amocrm-sandbox"), r.raw, benchSeed(plan.ColdCalls))
	if err != nil {
		return rep, err
	}
	r.sandbox = sb
	defer sb.Stop()

	var base *PathResult
	for _, spec := range Paths() {
		if len(opts.Only) > 0 && !slices.Contains(opts.Only, spec.Name) {
			continue
		}
		if len(opts.Only) == 0 && opts.Quick && !spec.Quick {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		res := r.runPath(ctx, spec)
		if spec.Name == "baseline" && res.Error == "" {
			base = &res
		}
		rep.Paths = append(rep.Paths, res)
	}
	if (len(opts.Only) == 0 || slices.Contains(opts.Only, CRMThroughputName)) && ctx.Err() == nil {
		rep.CRMThroughput = r.runThroughput(ctx)
	}
	rep.LockWait = r.lock.Waited.Seconds()
	compare(rep, base)
	rep.Seconds = time.Since(start).Seconds()
	return rep, ctx.Err()
}

func (r *runner) machine(ctx context.Context) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Sipp: sippVersion(), Asterisk: r.rig.Version(ctx)}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(string(data))
		if len(f) > 1 {
			kb, _ := strconv.Atoi(f[1])
			m.MemoryMB = kb / 1024
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if out, err := exec.CommandContext(ctx, filepath.Join(r.opts.Root, "bin/crmlink"), "version").Output(); err == nil {
		m.Crmlink = strings.TrimSpace(string(out))
	}
	if data, err := os.ReadFile(filepath.Join(os.Getenv("HOME"), ".cache/crmlink/run/mode")); err == nil {
		m.Rig = strings.TrimSpace(string(data))
	}
	return m
}

// runPath runs one path. The rig lock is held for each stretch that places calls (a step,
// the census, the profiling run), not for the whole path: the end-to-end tests can run in
// between, while the path's own processes (crmlink-bench on its own application name and
// ports, the sipp UAS on 5181) wait idle.
func (r *runner) runPath(ctx context.Context, spec PathSpec) PathResult {
	start := time.Now()
	waited := r.lock.Waited
	res := PathResult{Name: spec.Name, Title: spec.Title, Via: spec.Via, Note: spec.Note, Redis: spec.Redis}
	if spec.Crmlink {
		res.CRMRate = spec.CRMRate
	}
	r.say("%s: %s", spec.Name, spec.Title)
	if err := r.measure(ctx, spec, &res); err != nil {
		res.Error = err.Error()
		r.say("%s: %v", spec.Name, err)
	}
	res.Seconds = num(time.Since(start).Seconds())
	res.LockWait = num((r.lock.Waited - waited).Seconds())
	r.say("%s: done in %.0f s (%.0f s waiting for the rig lock), max sustained %d calls/s", spec.Name, res.Seconds, res.LockWait, res.MaxRate)
	return res
}

// locked runs f holding the rig lock.
func (r *runner) locked(ctx context.Context, f func() error) error {
	if err := r.lockRig(ctx); err != nil {
		return err
	}
	defer r.lock.Unlock()
	return f()
}

// lockRig takes the rig lock; with OwnConf it then restarts the rig's Asterisk with this
// checkout's asterisk-conf/ when it reads another's. The caller unlocks.
func (r *runner) lockRig(ctx context.Context) error {
	if err := r.lock.Lock(ctx, r.say); err != nil {
		return err
	}
	if r.opts.OwnConf && !rigReadsConf(r.opts.Root) {
		r.say("  the rig's Asterisk reads another checkout's asterisk-conf/: restarting it with this one's")
		out, err := exec.CommandContext(ctx, filepath.Join(r.opts.Root, "docker/rig.sh"), "restart-asterisk").CombinedOutput()
		if err == nil {
			err = r.rig.Prepare(ctx)
		}
		if err != nil {
			r.lock.Unlock()
			return fmt.Errorf("docker/rig.sh restart-asterisk: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// rigReadsConf reports whether the running Asterisk's /etc/asterisk holds the files of
// root's asterisk-conf/, byte for byte (read through /proc/<pid>/root: a container or a
// chroot alike).
func rigReadsConf(root string) bool {
	pid := asteriskPid()
	if pid == 0 {
		return false
	}
	files, err := filepath.Glob(filepath.Join(root, "asterisk-conf", "*.conf"))
	if err != nil || len(files) == 0 {
		return false
	}
	for _, f := range files {
		want, err1 := os.ReadFile(f)
		got, err2 := os.ReadFile(fmt.Sprintf("/proc/%d/root/etc/asterisk/%s", pid, filepath.Base(f)))
		if err1 != nil || err2 != nil || !bytes.Equal(want, got) {
			return false
		}
	}
	return true
}

func (r *runner) measure(ctx context.Context, spec PathSpec, res *PathResult) error {
	dir := filepath.Join(r.raw, spec.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := r.locked(ctx, func() error { return r.rig.Prepare(ctx) }); err != nil {
		return err
	}
	meter := cpuMeter{"asterisk": asteriskPid()}
	if !spec.Redirect {
		uas, err := StartUAS(dir, "127.0.0.1", uasPort)
		if err != nil {
			return err
		}
		defer uas.Stop()
		meter["sipp-uas"] = uas.Pid()
	}

	var crm *Crmlink
	if spec.Crmlink {
		meter["amocrm-sandbox"] = r.sandbox.Pid()
		sb := r.sandbox
		if err := sb.SetLatency(ctx, 50); err != nil {
			return err
		}
		if err := sb.SetRateLimit(ctx, spec.CRMRate); err != nil {
			return err
		}
		defer func() { _ = sb.SetRateLimit(context.WithoutCancel(ctx), 7) }()
		if spec.Census {
			if err := r.census(ctx, spec, dir, res); err != nil {
				return fmt.Errorf("ARI census: %w", err)
			}
		}
		var err error
		crm, err = r.startCrmlink(ctx, spec, dir, "", "", "")
		if err != nil {
			return err
		}
		defer crm.Stop()
		if err := r.warm(ctx, crm, spec.Callers); err != nil {
			return err
		}
		if err := sb.ResetCounters(ctx); err != nil {
			return err
		}
		meter["crmlink"] = crm.Pid()
		if m, err := crm.Metrics(ctx); err == nil {
			res.GoroutinesBefore = int(m.Value("go_goroutines"))
		}
	}
	cpu0 := cpuSeconds(meter["crmlink"])

	cold := 0 // next cold number
	fixed := map[int]bool{}
	run := func(phase string, rate int, d time.Duration) bool {
		if ctx.Err() != nil {
			return false
		}
		st, err := r.step(ctx, spec, dir, crm, meter, phase, rate, r.plan.calls(rate, d), &cold)
		if err != nil {
			st.Pass, st.Why = false, err.Error()
		}
		if err == nil && disturbed(st) && ctx.Err() == nil {
			r.say("  %d/s not sustained while other work used %.1f cores: once more", rate, st.OtherCores)
			st, err = r.step(ctx, spec, filepath.Join(dir, "again"), crm, meter, phase, rate, r.plan.calls(rate, d), &cold)
			if err != nil {
				st.Pass, st.Why = false, err.Error()
			}
			st.Retried = true
		}
		res.Steps = append(res.Steps, st)
		r.say("  %-6s %4d/s: %5d calls, %d failed, p50 %s p95 %s p99 %s ms, %.0f answers/s%s%s", phase, rate, st.Calls, st.Failed,
			ms(st.P50), ms(st.P95), ms(st.P99), st.Answered, fallbackNote(st), passNote(st))
		return st.Pass
	}
	for i, rate := range r.plan.Fixed {
		fixed[rate] = run("fixed", rate, r.plan.FixedFor)
		if last := res.Steps[len(res.Steps)-1]; !last.Pass && badly(last, spec.Callers == callersCold) {
			res.Skipped = r.plan.Fixed[i+1:]
			if len(res.Skipped) > 0 {
				r.say("  fixed rates %v skipped: %d/s already not sustained", res.Skipped, rate)
			}
			break
		}
	}
	res.MaxRate = r.plan.search(fixed, spec.RateCap, spec.Search, spec.Growth, func(rate int) bool { return run("search", rate, r.plan.RampFor) })
	for i := range res.Steps {
		switch s := &res.Steps[i]; {
		case s.Phase == "fixed" && s.Rate == 100:
			res.At100 = s
		case s.Phase == "fixed" && s.Rate == 50:
			res.At50 = s
		}
	}
	if crm != nil {
		res.CPUSeconds = num(cpuSeconds(crm.Pid()) - cpu0)
		res.RSSBytes = rssBytes(crm.Pid())
		res.Goroutines, res.GoroutinesSettled = r.goroutines(ctx, crm)
		if reqs, err := r.sandbox.Requests(ctx); err == nil {
			res.CRMRequests = reqs
		}
		if spec.Profile && r.opts.Profile && r.pprof != "" && ctx.Err() == nil {
			crm.Stop()
			if err := r.profile(ctx, spec, dir, res); err != nil {
				return fmt.Errorf("profiling run: %w", err)
			}
		}
	}
	return ctx.Err()
}

// goroutines reads crmlink's goroutines right after the last call, then once they stop
// falling (up to 8 s: the SIP stack keeps each finished transaction for a few seconds).
func (r *runner) goroutines(ctx context.Context, crm *Crmlink) (end, settled int) {
	read := func() int {
		m, err := crm.Metrics(ctx)
		if err != nil {
			return -1
		}
		return int(m.Value("go_goroutines"))
	}
	end = read()
	settled = end
	for i := 0; i < 8 && ctx.Err() == nil; i++ {
		time.Sleep(time.Second)
		n := read()
		if n < 0 || n >= settled {
			break
		}
		settled = n
	}
	return end, settled
}

// profile runs the path once more at profileRate with crmlink-pprof in place of crmlink.
func (r *runner) profile(ctx context.Context, spec PathSpec, dir string, res *PathResult) error {
	pdir := filepath.Join(dir, "profile")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return err
	}
	prof := filepath.Join(pdir, "crmlink.cpu.pprof")
	crm, err := r.startCrmlink(ctx, spec, pdir, "", "", prof)
	if err != nil {
		return err
	}
	defer crm.Stop()
	if err := r.warm(ctx, crm, spec.Callers); err != nil {
		return err
	}
	meter := cpuMeter{"asterisk": asteriskPid(), "crmlink": crm.Pid()}
	cold := 0
	st, err := r.step(ctx, spec, pdir, crm, meter, "profile", profileRate, int(profileRate*profileFor.Seconds()), &cold)
	if err != nil {
		return err
	}
	res.ProfileRun = &st
	crm.Stop() // writes the profile
	res.Profile = pprofTop(ctx, r.opts.Root, r.pprof, prof, 25, "-cum")
	res.ProfileFlat = pprofTop(ctx, r.opts.Root, r.pprof, prof, 15)
	res.ProfileParts = profileParts(pprofTop(ctx, r.opts.Root, r.pprof, prof, 400, "-cum"))
	r.say("  profile: %d calls at %d/s, crmlink %s ms CPU per call", st.Calls, profileRate, ms(st.CPUms["crmlink"]))
	return nil
}

// ProfilePart is one part of crmlink's work in the profiling run and its share of the CPU.
type ProfilePart struct {
	Part    string  `json:"part"`
	Percent float64 `json:"percent"`
}

// profileParts are the parts of crmlink's work on a call, by the frames (as pprofTop
// shortens them) whose cumulative time is theirs. net/http's connection loops run on their
// own goroutines, outside the requests' frames, so they are added to the requests.
var profilePartFrames = []struct {
	part   string
	frames []string
}{
	{"ARI REST requests (request, its answer, net/http's connection loops)", []string{"pbx/ari.(*restClient).begin", "pbx/ari.(*restClient).begin.func1", "pbx/ari.(*restClient).begin.func2", "net/http.(*persistConn).writeLoop", "net/http.(*persistConn).readLoop"}},
	{"ARI events (the websocket reader and JSON decoding, crmlink's dispatch)", []string{"pbx/ari.(*socket).read", "pbx/ari.(*Controller).dispatch"}},
	{"FastAGI sessions", []string{"pbx/agi.(*Server).serveConn"}},
	{"call outcomes handed to the durable event queue", []string{"events.(*Outbox).CallOutcome"}},
	{"Go scheduler looking for work (goroutine hand-offs)", []string{"runtime.findRunnable"}},
	{"garbage collection", []string{"runtime.gcBgMarkWorker"}},
}

// profileParts reads the parts' shares from a `pprof -top -cum` listing.
func profileParts(lines []string) []ProfilePart {
	cum := map[string]float64{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err == nil {
			cum[strings.Join(f[5:], " ")] = v
		}
	}
	var out []ProfilePart
	for _, p := range profilePartFrames {
		sum := 0.0
		for _, fr := range p.frames {
			sum += cum[fr]
		}
		if sum > 0 {
			out = append(out, ProfilePart{Part: p.part, Percent: num(sum)})
		}
	}
	return out
}

func (r *runner) startCrmlink(ctx context.Context, spec PathSpec, dir, ari, ws, profile string) (*Crmlink, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if spec.Curl {
		port = benchCurlPort
	}
	if err := r.sandbox.SetWebhook(ctx, fmt.Sprintf("http://127.0.0.1:%d/v1/webhooks/amocrm/%s", port, hookSecret)); err != nil {
		return nil, err
	}
	c := CrmlinkConfig{HTTPPort: port, DataDir: filepath.Join(dir, "data"), ARIURL: ari, WSURL: ws, AGI: spec.AGI, Observer: spec.Observer,
		Redirect: spec.Redirect, Redis: spec.Redis, CRMURL: r.sandbox.URL, CRMRateLimit: spec.CRMRate,
		Transport: spec.Transport, Ringing: spec.Ringing}
	profiler := ""
	if profile != "" {
		profiler = r.pprof
	}
	if len(spec.TwinArgs) > 0 {
		profiler = r.pprof
		if profile == "" {
			profile = filepath.Join(dir, "crmlink.cpu.pprof")
		}
	}
	crm, err := StartCrmlink(ctx, filepath.Join(r.opts.Root, "bin/crmlink"), dir, c, profiler, profile, spec.TwinArgs...)
	if err != nil {
		return nil, err
	}
	return crm, nil
}

// warm makes the path's callers known to crmlink the way production does: a first call
// (here GET /v1/route, the same Decide) looks the owner up and caches it; for the indexed
// set a webhook then gives each contact to manager 2.
func (r *runner) warm(ctx context.Context, crm *Crmlink, callers string) error {
	var nums []string
	switch callers {
	case callersCached:
		nums = numbers(warmNumbers, cachedNumber)
	case callersIndexed:
		nums = numbers(warmNumbers, indexedNumber)
	default:
		return nil
	}
	for _, n := range nums {
		var rt Route
		var err error
		for try := 0; try < 5; try++ {
			if rt, err = crm.Route(ctx, n); err == nil && rt.Result == "ROUTED" {
				break
			}
			time.Sleep(time.Second) // the CRM budget: 7 requests a second
		}
		if err != nil || rt.Result != "ROUTED" || rt.Owner != manager1 {
			return fmt.Errorf("warming %s: %+v %v", n, rt, err)
		}
	}
	want := Route{Result: "ROUTED", Owner: manager1, Source: "cache"}
	if callers == callersIndexed {
		for i := range nums {
			status, err := r.sandbox.GiveContact(ctx, indexedContact(i), manager2)
			if err != nil {
				return err
			}
			if status/100 != 2 {
				return fmt.Errorf("crmlink answered the webhook for contact %d with %d", indexedContact(i), status)
			}
		}
		want = Route{Result: "ROUTED", Owner: manager2, Source: "index"}
	}
	for _, n := range nums {
		rt, err := crm.Route(ctx, n)
		if err != nil {
			return err
		}
		if rt.Result != want.Result || rt.Owner != want.Owner || rt.Source != want.Source {
			return fmt.Errorf("after warming, %s routes %+v; want %+v", n, rt, want)
		}
	}
	return nil
}

// census runs a few calls through a crmlink whose ARI goes through a counting proxy.
func (r *runner) census(ctx context.Context, spec PathSpec, dir string, res *PathResult) error {
	px, err := startARICensus("http://127.0.0.1:8088")
	if err != nil {
		return err
	}
	defer px.close()
	cdir := filepath.Join(dir, "census")
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return err
	}
	rest, ws := px.URLs()
	crm, err := r.startCrmlink(ctx, spec, cdir, rest, ws, "")
	if err != nil {
		return err
	}
	defer crm.Stop()
	if err := r.warm(ctx, crm, spec.Callers); err != nil {
		return err
	}
	calls := 40
	if r.opts.Quick {
		calls = 20
	}
	px.reset()
	callers := filepath.Join(cdir, "callers.csv")
	if err := WriteCallers(callers, numbers(warmNumbers, cachedNumber)); err != nil {
		return err
	}
	var out UACResult
	err = r.locked(ctx, func() error {
		if !crm.waitHealthy(ctx, 15*time.Second) {
			return fmt.Errorf("crmlink is not healthy (/healthz): %s", tail(crm.log, 3))
		}
		var err error
		out, err = r.uac(spec, cdir, 10, calls, callers).Run(ctx)
		r.rig.WaitIdle(ctx, 10*time.Second)
		time.Sleep(300 * time.Millisecond)
		return err
	})
	if err != nil {
		return err
	}
	counts, events := px.snapshot()
	res.CensusCalls = out.Successful
	res.Census, res.CensusEvents = map[string]float64{}, map[string]float64{}
	if out.Successful > 0 {
		for k, v := range counts {
			res.Census[k] = num(float64(v) / float64(out.Successful))
		}
		for k, v := range events {
			res.CensusEvents[k] = num(float64(v) / float64(out.Successful))
		}
	}
	r.say("  census: %d calls, %d ARI requests, %d ARI events", out.Successful, sum(counts), sum(events))
	return nil
}

func sum(m map[string]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}

func (r *runner) uac(spec PathSpec, dir string, rate, calls int, callers string) UAC {
	r.port++
	if r.port > 5399 {
		r.port = 5300
	}
	u := UAC{Scenario: filepath.Join(r.opts.Root, "bench/sipp/uac.xml"), Target: "127.0.0.1:5060", Service: spec.Service,
		LocalIP: "127.0.0.2", LocalPort: r.port, Rate: rate, Calls: calls, HoldMS: r.plan.HoldMS, Callers: callers, Dir: dir}
	if spec.Redirect {
		u.Scenario = filepath.Join(r.opts.Root, "bench/sipp/redirect.xml")
		u.Target = benchRedirect
		u.HoldMS = 0
	}
	return u
}

// step offers one rate to the path and measures it.
func (r *runner) step(ctx context.Context, spec PathSpec, pathDir string, crm *Crmlink, meter cpuMeter, phase string, rate, calls int, cold *int) (Step, error) {
	st := Step{Phase: phase, Rate: rate}
	dir := filepath.Join(pathDir, fmt.Sprintf("%s-%04d", phase, rate))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, err
	}
	var nums []string
	switch spec.Callers {
	case callersCold:
		if *cold+calls > r.plan.ColdCalls {
			return st, fmt.Errorf("out of cold numbers (%d used of %d)", *cold, r.plan.ColdCalls)
		}
		nums = numbers(calls, func(i int) string { return coldNumber(*cold + i) })
		*cold += calls
	case callersIndexed:
		nums = numbers(warmNumbers, indexedNumber)
	default:
		nums = numbers(warmNumbers, cachedNumber)
	}
	callers := filepath.Join(dir, "callers.csv")
	if err := WriteCallers(callers, nums); err != nil {
		return st, err
	}
	r.waitQuiet(ctx, meter, spec.QuietWait)
	if err := r.lockRig(ctx); err != nil {
		return st, err
	}
	defer r.lock.Unlock()
	if _, ok := meter["asterisk"]; ok {
		meter["asterisk"] = asteriskPid() // a new one when lockRig restarted it
	}
	if crm != nil && !crm.waitHealthy(ctx, 15*time.Second) {
		return st, fmt.Errorf("crmlink is not healthy (/healthz): ARI or Redis down: %s", tail(crm.log, 3))
	}
	if n := r.rig.WaitIdle(ctx, 10*time.Second); n > 0 {
		if err := writeStuck(filepath.Join(dir, "stuck-before.txt"), r.rig.Cleanup(ctx)); err != nil {
			return st, err
		}
		if r.rig.WaitIdle(ctx, 3*time.Second) > 0 {
			return st, fmt.Errorf("Asterisk still has %d channels up before the step, not the benchmark's", n)
		}
	}
	var m0 Metrics
	if crm != nil {
		m0, _ = crm.Metrics(ctx)
	}
	cpu0 := meter.read()
	busy0, total0 := machineCPU()
	t0 := time.Now()

	out, err := r.uac(spec, dir, rate, calls, callers).Run(ctx)
	if err != nil {
		return st, err
	}
	if !spec.Redirect {
		// Teardown belongs to the call: wait for the last channels to go before reading
		// CPU. sipp gives up on a call 5 s after its INVITE and crmlink stops ringing
		// ring_timeout (5 s) + 2 s after it started: what is still up 8 s after sipp's last
		// call is stuck for good. Hang it up so the next step starts clean.
		if st.Stuck = r.rig.WaitIdle(ctx, 8*time.Second); st.Stuck > 0 {
			stuck := r.rig.Cleanup(ctx)
			st.Stuck = len(stuck)
			if err := writeStuck(filepath.Join(dir, "stuck.txt"), stuck); err != nil {
				return st, err
			}
			r.say("  %d channels still up 8 s after the step's last call: hung up (stuck.txt)", st.Stuck)
		}
	}
	cpu := cpuDelta(cpu0, meter.read())
	busy1, total1 := machineCPU()
	cpu["sipp-uac"] = out.CPU
	r.lock.Unlock()

	st.Calls, st.Successful, st.Failed, st.Retrans = out.Created, out.Successful, out.Failed, out.Retransmissions
	if lost := out.Created - out.Successful - out.Failed; lost > 0 {
		st.Failed += lost // never completed: counted as failed
	}
	st.P50, st.P95, st.P99 = num(percentile(out.Times, 50)), num(percentile(out.Times, 95)), num(percentile(out.Times, 99))
	st.Max = num(percentile(out.Times, 100))
	st.Answered = num(answerRate(out.At))
	st.Errors = out.Errors
	st.CPUms = map[string]float64{}
	for k, v := range cpu {
		if st.Calls > 0 {
			st.CPUms[k] = num(v * 1000 / float64(st.Calls))
		}
	}
	if total1 > total0 {
		st.MachineBusy = num((busy1 - busy0) / (total1 - total0))
		ours := 0.0
		for _, v := range cpu {
			ours += v
		}
		wall := time.Since(t0).Seconds()
		st.OtherCores = num(max(0, st.MachineBusy*float64(runtime.NumCPU())-ours/wall))
	}
	if crm != nil {
		if m1, err := crm.Metrics(ctx); err == nil {
			d := m1.delta(m0)
			st.Decisions = int(d.Sum("crmlink_route_decisions_total", nil))
			st.Fallbacks = int(d.Sum("crmlink_route_decisions_total", map[string]string{"result": "FALLBACK"}))
			st.Reasons = positive(fallbackReasons(d))
			st.Sources = positive(d.By("crmlink_route_decisions_total", "source"))
			st.Outcomes = int(d.Sum("crmlink_calls_total", nil))
			if n := d.Sum("crmlink_route_decision_seconds_count", nil); n > 0 {
				st.DecideMeanUS = num(d.Sum("crmlink_route_decision_seconds_sum", nil) / n * 1e6)
			}
		}
	}
	st.Pass, st.Why = judge(st, spec, out)
	return st, nil
}

// writeStuck records the channels the benchmark had to hang up, one per line.
func writeStuck(path string, chans []string) error {
	if len(chans) == 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644) // a retried step adds to it
	if err == nil {
		_, err = f.WriteString(strings.Join(chans, "\n") + "\n")
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		return fmt.Errorf("record stuck channels: %w", err)
	}
	return nil
}

func fallbackReasons(d Metrics) map[string]float64 {
	out := map[string]float64{}
	for k, v := range d {
		n, labels := splitSample(k)
		if n == "crmlink_route_decisions_total" && labels["result"] == "FALLBACK" {
			out[labels["reason"]] += v
		}
	}
	return out
}

func positive(m map[string]float64) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if v > 0 {
			out[k] = int(v)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// quietCores is how much CPU other work may use before a step starts.
const quietCores = 0.35

// waitQuiet waits (up to limit, 10 s by default, 3 s in quick mode) until processes outside
// the benchmark use under quietCores: the machine is shared, and a step measured next to a
// compiler is not measuring crmlink. Between steps the benchmark has no call up, so
// Asterisk's own CPU counts as other work too (somebody else's calls through the rig).
func (r *runner) waitQuiet(ctx context.Context, meter cpuMeter, limit time.Duration) {
	if limit <= 0 {
		limit = 10 * time.Second
	}
	if r.opts.Quick {
		limit = min(limit, 3*time.Second)
	}
	deadline := time.Now().Add(limit)
	for {
		others := r.otherCores(ctx, meter)
		if others < quietCores || ctx.Err() != nil {
			return
		}
		if time.Now().After(deadline) {
			r.say("  the machine stays busy (%.1f cores used by other work): measuring anyway", others)
			return
		}
	}
}

// otherCores samples for half a second how many cores are busy outside the benchmark's
// idle processes (Asterisk counted as outside).
func (r *runner) otherCores(ctx context.Context, meter cpuMeter) float64 {
	c0, t := meter.read(), time.Now()
	b0, tot0 := machineCPU()
	select {
	case <-ctx.Done():
		return 0
	case <-time.After(500 * time.Millisecond):
	}
	b1, tot1 := machineCPU()
	ours := 0.0
	for name, v := range cpuDelta(c0, meter.read()) {
		if name != "asterisk" {
			ours += v
		}
	}
	if tot1 <= tot0 {
		return 0
	}
	return (b1-b0)/(tot1-tot0)*float64(runtime.NumCPU()) - ours/time.Since(t).Seconds()
}

// disturbed is a step that failed while other work took a real share of the machine:
// worth one more try.
func disturbed(st Step) bool { return !st.Pass && st.OtherCores > quietCores }

// badly is a step past which higher fixed rates are not worth offering: past saturation
// they only pile up failed and stuck calls (and minutes of cleanup). A cold path is expected
// to fall back and wait on the CRM budget at every fixed rate (the share that falls back is
// what its fixed rates are for): only failed calls stop it.
func badly(st Step, cold bool) bool {
	if st.Calls == 0 || float64(st.Failed) > 0.02*float64(st.Calls) {
		return true
	}
	return !cold && !st.Pass
}

// judge applies the pass criteria to a step.
func judge(st Step, spec PathSpec, out UACResult) (bool, string) {
	var why []string
	if st.Calls == 0 {
		return false, "no call placed"
	}
	if out.Killed {
		why = append(why, "sipp did not finish in time")
	}
	if f := float64(st.Failed) / float64(st.Calls); f >= maxFailedShare && st.Failed > 0 {
		why = append(why, fmt.Sprintf("%.1f%% failed", f*100))
	}
	if st.Answered < float64(st.Rate)*minAnsweredShare && st.Successful > 1 {
		why = append(why, fmt.Sprintf("answered %.0f/s of %d/s", st.Answered, st.Rate))
	}
	if st.P99 > maxP99ms {
		why = append(why, fmt.Sprintf("p99 %.0f ms", st.P99))
	}
	if st.Stuck > 0 {
		why = append(why, fmt.Sprintf("%d channels stuck", st.Stuck))
	}
	if spec.Crmlink && st.Decisions > 0 {
		if f := float64(st.Fallbacks) / float64(st.Decisions); f >= maxFallbackShare && st.Fallbacks > 0 {
			why = append(why, fmt.Sprintf("%.1f%% fell back", f*100))
		}
	}
	return len(why) == 0, strings.Join(why, "; ")
}

// compare fills the ratios to the baseline and flags what issue 7 asks to look into.
func compare(rep *Report, base *PathResult) {
	for i := range rep.Paths {
		p := &rep.Paths[i]
		if base == nil || p.Name == base.Name || p.Error != "" {
			continue
		}
		if p.At100 != nil && base.At100 != nil {
			if base.At100.P99 > 0 {
				p.P99Ratio = num(p.At100.P99 / base.At100.P99)
			}
			if base.At100.P50 > 0 {
				p.P50Ratio = num(p.At100.P50 / base.At100.P50)
			}
			if base.At100.P99 > 0 && p.At100.P99 > 1.25*base.At100.P99 {
				p.Flags = append(p.Flags, fmt.Sprintf("p99 at 100 calls/s is %.2fx the baseline's (over 1.25x)", p.At100.P99/base.At100.P99))
			}
		}
		if p.At50 != nil && base.At50 != nil && base.At50.P99 > 0 {
			p.P99Ratio50 = num(p.At50.P99 / base.At50.P99)
		}
		if base.MaxRate > 0 {
			p.MaxRatio = num(float64(p.MaxRate) / float64(base.MaxRate))
			if float64(p.MaxRate) < 0.9*float64(base.MaxRate) {
				p.Flags = append(p.Flags, fmt.Sprintf("sustains %d calls/s, %.0f%% of the baseline's %d (under 90%%)", p.MaxRate, 100*float64(p.MaxRate)/float64(base.MaxRate), base.MaxRate))
			}
		}
	}
}

func ms(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func fallbackNote(st Step) string {
	if st.Fallbacks == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(st.Reasons))
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, st.Reasons[k]))
	}
	return fmt.Sprintf(", %d fell back (%s)", st.Fallbacks, strings.Join(parts, ", "))
}

func passNote(st Step) string {
	if st.Pass {
		return ", sustained"
	}
	return ", NOT sustained: " + st.Why
}
