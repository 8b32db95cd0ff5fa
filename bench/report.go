package bench

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Write puts bench.json, bench.md and bench-latency.svg into dir.
func (rep *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.md"), []byte(rep.Markdown()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench-latency.svg"), []byte(rep.SVG()), 0o644)
}

// ReadReport loads a bench.json written by Write.
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// The pointers into the steps are separate copies after decoding: point them back.
	for i := range rep.Paths {
		p := &rep.Paths[i]
		p.At100, p.At50 = nil, nil
		for j := range p.Steps {
			switch s := &p.Steps[j]; {
			case s.Phase == "fixed" && s.Rate == 100:
				p.At100 = s
			case s.Phase == "fixed" && s.Rate == 50:
				p.At50 = s
			}
		}
	}
	return &rep, nil
}

// Markdown is the report for people: the summary table first, then each path's steps.
func (rep *Report) Markdown() string {
	var b strings.Builder
	m := rep.Machine
	mode := "full"
	if rep.Quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "# crmlink call-setup benchmark\n\n")
	fmt.Fprintf(&b, "%s run of %s, %.0f s (%.0f s of it waiting for the rig lock). Machine: %s, %d cores, %d MB; kernel %s; "+
		"Asterisk %s (%s rig); %s; %s; crmlink %s. Load generator, PBX, crmlink and the amoCRM sandbox share the same cores.\n\n",
		mode, rep.Started.UTC().Format("2006-01-02 15:04 UTC"), rep.Seconds, rep.LockWait, m.CPU, m.Cores, m.MemoryMB, m.Kernel,
		m.Asterisk, orDash(m.Rig), m.Sipp, m.Go, orDash(m.Crmlink))
	fmt.Fprintf(&b, "Latency is INVITE to 200 OK at the caller (to 302 for the redirect server), from sipp's response times "+
		"(whole milliseconds: 0 means under 1 ms). Each call is held %d ms, then the caller hangs up. "+
		"A rate is *sustained* when under %.1f%% of calls fail, answers keep up with %.0f%% of the offered rate, "+
		"p99 stays under %d ms and, for crmlink, under %.1f%% of calls fall back. Fixed rates %v calls/s for %s each, then a "+
		"search (grow by %.1fx while sustained, then halve the gap) of at most %d steps.\n\n",
		rep.Plan.HoldMS, maxFailedShare*100, minAnsweredShare*100, maxP99ms, maxFallbackShare*100, rep.Plan.Fixed, rep.Plan.FixedFor,
		rep.Plan.Growth, rep.Plan.RampSteps)

	b.WriteString("## Summary\n\n")
	b.WriteString("| path | p50 / p95 / p99 ms at 100/s | max sustained calls/s | failed calls (all steps) | fallbacks at 100/s | CPU ms per call at 100/s: crmlink / Asterisk | crmlink RSS MB, goroutines (idle → end) | p99 vs baseline at 100/s | max rate vs baseline | p50 / p99 ms at 50/s (p99 vs baseline) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range rep.Paths {
		if p.Error != "" && len(p.Steps) == 0 {
			fmt.Fprintf(&b, "| %s | error: %s | | | | | | | | |\n", p.Name, p.Error)
			continue
		}
		lat, fb, cpu := "not run", "", ""
		if s := p.At100; s != nil {
			lat = fmt.Sprintf("%s / %s / %s", ms(s.P50), ms(s.P95), ms(s.P99))
			if p.Via != "asterisk" {
				fb = fmt.Sprintf("%d of %d", s.Fallbacks, s.Decisions)
				if s.Fallbacks > 0 {
					fb += " (" + reasons(s.Reasons) + ")"
				}
			}
			cpu = fmt.Sprintf("%s / %s", ms(s.CPUms["crmlink"]), ms(s.CPUms["asterisk"]))
			if _, ran := s.CPUms["crmlink"]; !ran {
				cpu = fmt.Sprintf("– / %s", ms(s.CPUms["asterisk"]))
			}
		}
		failed, calls := 0, 0
		for _, s := range p.Steps {
			failed += s.Failed
			calls += s.Calls
		}
		mem := ""
		if p.RSSBytes > 0 {
			mem = fmt.Sprintf("%.1f, %d → %d (%d settled)", float64(p.RSSBytes)/(1<<20), p.GoroutinesBefore, p.Goroutines, p.GoroutinesSettled)
		}
		ratio, mratio := "", ""
		if p.P99Ratio > 0 {
			ratio = fmt.Sprintf("%.2fx", p.P99Ratio)
		}
		if p.MaxRatio > 0 || (p.Name != "baseline" && p.MaxRate == 0 && len(p.Steps) > 0) {
			mratio = fmt.Sprintf("%.2fx", p.MaxRatio)
		}
		name := p.Name
		if p.Error != "" {
			name += " (stopped: " + p.Error + ")"
		}
		at50 := ""
		if s := p.At50; s != nil {
			at50 = fmt.Sprintf("%s / %s", ms(s.P50), ms(s.P99))
			if p.P99Ratio50 > 0 {
				at50 += fmt.Sprintf(" (%.2fx)", p.P99Ratio50)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d of %d | %s | %s | %s | %s | %s | %s |\n", name, lat, p.MaxRate, failed, calls, fb, cpu, mem, ratio, mratio, at50)
	}
	b.WriteString("\n")
	for _, p := range rep.Paths {
		if len(p.Census) > 0 {
			fmt.Fprintf(&b, "ARI REST requests per routed call (census), %s: %s.\n", p.Name, ms(callRequests(p.Census)))
		}
	}
	b.WriteString("\n")
	for _, p := range rep.Paths {
		fmt.Fprintf(&b, "- **%s**: %s. %s", p.Name, p.Title, p.Note)
		if p.Redis {
			b.WriteString(" Redis: yes.")
		} else if p.Via != "asterisk" {
			b.WriteString(" Redis: no (in-process cache).")
		}
		b.WriteString("\n")
	}

	for _, p := range rep.Paths {
		if line := observedLine(p); line != "" {
			b.WriteString("\n" + line + "\n")
		}
	}

	if flagged := flaggedPaths(rep); len(flagged) > 0 {
		b.WriteString("\n## Over issue 7's thresholds\n\n")
		for _, p := range flagged {
			fmt.Fprintf(&b, "- **%s**: %s.\n", p.Name, strings.Join(p.Flags, "; "))
		}
	}

	stuck := false
	for _, p := range rep.Paths {
		n := 0
		for _, s := range p.Steps {
			n += s.Stuck
		}
		if n > 0 {
			if !stuck {
				b.WriteString("\n## Calls left stuck in Asterisk\n\n")
				stuck = true
			}
			fmt.Fprintf(&b, "- **%s**: %d channels were still up 8 s after their step's last call (past crmlink's ring timer of 5 s + 2 s) and were hung up by the benchmark: calls crmlink lost track of (listed in bench-raw/%s/<step>/stuck.txt).\n", p.Name, n, p.Name)
		}
	}

	b.WriteString("\n## What bounds each path (from this run)\n\n")
	var base *PathResult
	for i := range rep.Paths {
		if rep.Paths[i].Name == "baseline" {
			base = &rep.Paths[i]
		}
	}
	for _, p := range rep.Paths {
		fmt.Fprintf(&b, "- **%s**: %s%s\n", p.Name, bound(p, max(m.Cores, 1)), versusBaseline(p, base))
	}

	b.WriteString("\n## Steps\n\n")
	b.WriteString("CPU is milliseconds of CPU per call of each process over the step (teardown included); busy is the share of all cores busy; others is how many cores processes outside the benchmark (other work on this shared machine) used meanwhile.\n\n")
	for _, p := range rep.Paths {
		fmt.Fprintf(&b, "### %s\n\n", p.Name)
		if p.Error != "" {
			fmt.Fprintf(&b, "Stopped: %s\n\n", p.Error)
		}
		b.WriteString("| step | rate | calls | failed | p50 | p95 | p99 | max | answers/s | fallbacks | source | decide µs | CPU ms/call | busy | others | sustained |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range p.Steps {
			fb := ""
			if s.Decisions > 0 {
				fb = fmt.Sprintf("%d", s.Fallbacks)
				if s.Fallbacks > 0 {
					fb += " (" + reasons(s.Reasons) + ")"
				}
			}
			sus := "yes"
			if !s.Pass {
				sus = "no: " + s.Why
			}
			phase := s.Phase
			if s.Retried {
				phase += " (second try: the first was disturbed by other work)"
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %.0f%% | %.2f | %s |\n",
				phase, s.Rate, s.Calls, s.Failed, ms(s.P50), ms(s.P95), ms(s.P99), ms(s.Max), s.Answered, fb, reasons(s.Sources),
				blankZero(s.DecideMeanUS), cpuList(s.CPUms), s.MachineBusy*100, s.OtherCores, sus)
		}
		if len(p.Skipped) > 0 {
			fmt.Fprintf(&b, "\nFixed rates %v not offered: a lower one was already not sustained (for a cold path: over 2%% of its calls failed).\n", p.Skipped)
		}
		if p.RSSBytes > 0 {
			fmt.Fprintf(&b, "\ncrmlink at the end: RSS %.1f MB, %d goroutines right after the last call, %d once settled (%d before the calls), %.2f s CPU over the path.",
				float64(p.RSSBytes)/(1<<20), p.Goroutines, p.GoroutinesSettled, p.GoroutinesBefore, p.CPUSeconds)
			if len(p.CRMRequests) > 0 {
				fmt.Fprintf(&b, " amoCRM API requests during the calls: %s.", reasons(p.CRMRequests))
			}
			b.WriteString("\n")
		}
		if len(p.Census) > 0 {
			fmt.Fprintf(&b, "\nARI requests crmlink made per call (census of %d routed calls at 10/s through a counting proxy; WS: a REST request over the event websocket):\n\n", p.CensusCalls)
			b.WriteString("| request | per call |\n|---|---|\n")
			keys := slices.Sorted(maps.Keys(p.Census))
			for _, k := range keys {
				fmt.Fprintf(&b, "| `%s` | %s |\n", k, ms(p.Census[k]))
			}
			total := callRequests(p.Census)
			all := 0.0
			for _, v := range p.Census {
				all += v
			}
			fmt.Fprintf(&b, "| **REST requests per routed call** (the call's own) | %s |\n", ms(total))
			fmt.Fprintf(&b, "| the reconciler's and the connection's, spread over the calls (every 2 s, not per call) | %s |\n", ms(num(all-total)))
			if len(p.CensusEvents) > 0 {
				fmt.Fprintf(&b, "\nARI events Asterisk sent crmlink per call (same census):\n\n| event | per call |\n|---|---|\n")
				all := 0.0
				for _, k := range slices.Sorted(maps.Keys(p.CensusEvents)) {
					fmt.Fprintf(&b, "| %s | %s |\n", k, ms(p.CensusEvents[k]))
					all += p.CensusEvents[k]
				}
				fmt.Fprintf(&b, "| all events | %s |\n", ms(num(all)))
			}
		}
		if p.ProfileRun != nil && len(p.Profile) > 0 {
			s := p.ProfileRun
			fmt.Fprintf(&b, "\nProfiling run: crmlink-pprof (`crmlink serve` with runtime/pprof) in place of crmlink, %d calls at %d/s: "+
				"p50 %s ms, p99 %s ms, CPU ms per call %s. Top of crmlink's CPU profile by cumulative time, then by own time:\n\n```\n%s\n```\n\n```\n%s\n```\n",
				s.Calls, s.Rate, ms(s.P50), ms(s.P99), cpuList(s.CPUms), strings.Join(p.Profile, "\n"), strings.Join(p.ProfileFlat, "\n"))
			if len(p.ProfileParts) > 0 {
				parts := make([]string, 0, len(p.ProfileParts))
				for _, pp := range p.ProfileParts {
					parts = append(parts, fmt.Sprintf("%s %.0f%%", pp.Part, pp.Percent))
				}
				fmt.Fprintf(&b, "\ncrmlink's CPU in the profiling run by part of its work (cumulative shares; the rest is the HTTP API, the reconciler and the runtime): %s.\n", strings.Join(parts, "; "))
			}
		}
		b.WriteString("\n")
	}

	if rep.CRMThroughput != nil {
		rep.CRMThroughput.markdown(&b)
	}
	if len(rep.GoBench) > 0 {
		b.WriteString("## Go benchmarks (the decision on its own)\n\n")
		b.WriteString("| benchmark | ns/op | B/op | allocs/op | other |\n|---|---|---|---|---|\n")
		for _, run := range rep.GoBench {
			if run.Error != "" && len(run.Results) == 0 {
				fmt.Fprintf(&b, "| %s | not run: %s | | | |\n", run.Package, run.Error)
			}
			for _, g := range run.Results {
				var other []string
				for _, k := range slices.Sorted(maps.Keys(g.Values)) {
					if k != "ns/op" && k != "B/op" && k != "allocs/op" {
						other = append(other, fmt.Sprintf("%s %s", ms(g.Values[k]), k))
					}
				}
				fmt.Fprintf(&b, "| %s.%s | %s | %s | %s | %s |\n", g.Package, g.Name, ms(g.Values["ns/op"]), ms(g.Values["B/op"]),
					ms(g.Values["allocs/op"]), strings.Join(other, ", "))
			}
		}
		for _, run := range rep.GoBench {
			if len(run.Profile) > 0 {
				fmt.Fprintf(&b, "\nCPU profile of the %s benchmarks (top by cumulative time):\n\n```\n%s\n```\n", run.Package, strings.Join(run.Profile, "\n"))
			}
		}
	}
	b.WriteString("\nRaw sipp output, crmlink logs and configurations: `results/bench-raw/`. Chart: `results/bench-latency.svg`.\n")
	return b.String()
}

// bound says what stopped a path, from its first step that was not sustained, and what
// the CPU each call costs allows on this machine: cores x 1000 / (CPU ms per call of every
// process involved), with and without the sipp load generator that shares the cores here.
func bound(p PathResult, cores int) string {
	var fail, best *Step
	for i := range p.Steps {
		s := &p.Steps[i]
		if !s.Pass && (fail == nil || s.Rate < fail.Rate) && s.Rate > p.MaxRate {
			fail = s
		}
		if s.Pass && (best == nil || s.Rate > best.Rate) {
			best = s
		}
	}
	ceiling := ""
	if best != nil && best.Rate >= 20 {
		all, pbx := 0.0, 0.0
		for k, v := range best.CPUms {
			all += v
			if !strings.HasPrefix(k, "sipp") {
				pbx += v
			}
		}
		if all > 0 && pbx > 0 {
			ceiling = fmt.Sprintf(" At %d calls/s a call cost %s ms of CPU in all (%s): %d cores allow about %.0f calls/s, or %.0f without the load generator on the same cores.",
				best.Rate, ms(num(all)), cpuList(best.CPUms), cores, float64(cores)*1000/all, float64(cores)*1000/pbx)
		}
	}
	if fail == nil {
		if p.MaxRate > 0 {
			return fmt.Sprintf("sustained every rate offered up to %d calls/s (the search's step budget or cap ended it).%s", p.MaxRate, ceiling)
		}
		return "no step ran."
	}
	return fmt.Sprintf("first not sustained at %d calls/s (%s); cores %.0f%% busy (%.2f cores by other work).%s",
		fail.Rate, fail.Why, fail.MachineBusy*100, fail.OtherCores, ceiling)
}

// versusBaseline explains a path that goes through Asterisk and crmlink by its CPU per call
// against the baseline's at the same rate (100 calls/s, else the highest both sustained):
// on cores shared by everything, a path that costs k times the baseline's CPU per call
// keeps them as busy at rate r as the baseline at k·r, and queues as the baseline does
// there, so its latency is read against the baseline's step nearest to k·r.
func versusBaseline(p PathResult, base *PathResult) string {
	if base == nil || p.Name == base.Name || !slices.Contains([]string{"ari", "agi"}, p.Via) {
		return ""
	}
	same := func(rate int) (*Step, *Step) {
		var ps, bs *Step
		for i := range p.Steps {
			if s := &p.Steps[i]; s.Rate == rate {
				ps = s
			}
		}
		for i := range base.Steps {
			if s := &base.Steps[i]; s.Rate == rate {
				bs = s
			}
		}
		return ps, bs
	}
	ps, bs := same(100)
	if ps == nil || bs == nil {
		ps, bs = nil, nil
		for i := range p.Steps {
			if s := &p.Steps[i]; s.Pass && (ps == nil || s.Rate > ps.Rate) {
				if _, b := same(s.Rate); b != nil {
					ps, bs = s, b
				}
			}
		}
	}
	if ps == nil || bs == nil {
		return ""
	}
	total := func(s *Step) float64 {
		t := 0.0
		for _, v := range s.CPUms {
			t += v
		}
		return t
	}
	ast, bast, crm := ps.CPUms["asterisk"], bs.CPUms["asterisk"], ps.CPUms["crmlink"]
	all, ball := total(ps), total(bs)
	if bast <= 0 || ball <= 0 {
		return ""
	}
	k := all / ball
	equiv := k * float64(ps.Rate)
	var near *Step
	for i := range base.Steps {
		if s := &base.Steps[i]; near == nil || math.Abs(float64(s.Rate)-equiv) < math.Abs(float64(near.Rate)-equiv) {
			near = s
		}
	}
	what := "ARI's HTTP requests and JSON events, the originated leg and the bridge crmlink asks for"
	if p.Via == "agi" {
		what = "the FastAGI session and the dialplan around it"
	}
	text := fmt.Sprintf(" Against the baseline at %d calls/s: a call costs Asterisk %.1f ms of CPU here and %.1f ms in the baseline "+
		"(%+.1f ms: %s), plus crmlink %.1f ms; %.1f ms in all against %.1f, %.2fx. On shared cores that is the load of the baseline at about %.0f calls/s",
		ps.Rate, ast, bast, ast-bast, what, crm, all, ball, k, equiv)
	if near != nil {
		text += fmt.Sprintf(", where the baseline's own p99 was %s ms (its step at %d/s) against %s ms at %d/s", ms(near.P99), near.Rate, ms(bs.P99), bs.Rate)
	}
	steps := "the AGI session's requests and answers"
	if p.Via == "ari" {
		steps = "the ARI steps of each call, one after the other (StasisStart, ring and originate, the leg's StasisStart, " +
			"variables, answer and bridge, addChannel), each an event or request through both processes"
	}
	return text + ". The extra CPU per call (Asterisk's and crmlink's) bounds the rate; the latency also adds up " + steps +
		", each waiting its turn on the busy cores."
}

func flaggedPaths(rep *Report) []PathResult {
	var out []PathResult
	for _, p := range rep.Paths {
		if len(p.Flags) > 0 {
			out = append(out, p)
		}
	}
	return out
}

func reasons[V int | float64](m map[string]V) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		name := k
		if name == "" {
			name = "none"
		}
		parts = append(parts, fmt.Sprintf("%s %v", name, m[k]))
	}
	return strings.Join(parts, ", ")
}

func cpuList(m map[string]float64) string {
	order := []string{"crmlink", "asterisk", "amocrm-sandbox", "sipp-uas", "sipp-uac"}
	short := map[string]string{"crmlink": "crmlink", "asterisk": "ast", "amocrm-sandbox": "crm", "sipp-uas": "uas", "sipp-uac": "uac"}
	var parts []string
	for _, k := range order {
		if v, ok := m[k]; ok {
			parts = append(parts, short[k]+" "+ms(v))
		}
	}
	return strings.Join(parts, ", ")
}

func blankZero(v float64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f", v)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// observedLine is what observing costs per call on a path where crmlink only observes
// (Via asterisk with crmlink running): its CPU per observed call at each sustained step.
func observedLine(p PathResult) string {
	if p.Via != "asterisk" {
		return ""
	}
	var parts []string
	for _, s := range p.Steps {
		cpu, ran := s.CPUms["crmlink"]
		if !ran || s.Outcomes == 0 || !s.Pass {
			continue
		}
		perCall := cpu * float64(s.Calls) / float64(s.Outcomes)
		parts = append(parts, fmt.Sprintf("%s ms at %d/s (%d calls observed of %d)", ms(num(perCall)), s.Rate, s.Outcomes, s.Calls))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("**%s**: crmlink CPU per observed call (the observer, the event queue and the call note it leads to): %s; max sustained rate %.2fx the baseline's.",
		p.Name, strings.Join(parts, ", "), p.MaxRatio)
}

// callRequests is how many of a census's requests per call the call itself made: all but
// the reconciler's and the connection's (backgroundRoute).
func callRequests(census map[string]float64) float64 {
	total := 0.0
	for k, v := range census {
		if !backgroundRoute(k) {
			total += v
		}
	}
	return num(total)
}
