package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// GoBench is one `go test -bench` result line.
type GoBench struct {
	Package string             `json:"package"`
	Name    string             `json:"name"`
	N       int64              `json:"iterations"`
	Values  map[string]float64 `json:"values"` // unit -> value: ns/op, B/op, allocs/op, crm-req/op
}

// GoBenchRun is one package's benchmarks, or why they did not run.
type GoBenchRun struct {
	Package string    `json:"package"`
	Results []GoBench `json:"results"`
	Error   string    `json:"error,omitempty"`
	// Profile is the top of the CPU profile taken while the benchmarks ran.
	Profile []string `json:"profile,omitempty"`
}

// goBenchPackages are the decision's benchmarks: the cache hit in memory and in Redis,
// concurrent lookups of one number (routing), the rules engine per event (scenarios).
var goBenchPackages = []struct{ pkg, pattern string }{
	{"./routing/", "Decide"},
	{"./scenarios/", "."},
}

// runGoBenches runs each package's benchmarks for benchtime with a CPU profile. A package
// that does not build (scenarios may be mid-change) is reported, not fatal.
func runGoBenches(ctx context.Context, root, dir, benchtime string) []GoBenchRun {
	var out []GoBenchRun
	for _, p := range goBenchPackages {
		name := strings.Trim(strings.ReplaceAll(strings.TrimPrefix(p.pkg, "./"), "/", "-"), "-")
		prof := filepath.Join(dir, name+".cpu.pprof")
		bin := filepath.Join(dir, name+".test")
		run := GoBenchRun{Package: strings.TrimSuffix(strings.TrimPrefix(p.pkg, "./"), "/")}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		cmd := exec.CommandContext(cctx, "go", "test", "-run", "^$", "-bench", p.pattern, "-benchtime", benchtime,
			"-count", "1", "-cpuprofile", prof, "-o", bin, p.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CRMLINK_TEST_REDIS="+rigRedis)
		data, err := cmd.CombinedOutput()
		cancel()
		_ = os.WriteFile(filepath.Join(dir, name+".bench.txt"), data, 0o644)
		run.Results = parseGoBench(strings.NewReader(string(data)), run.Package)
		if err != nil {
			run.Error = fmt.Sprintf("%v: %s", err, lastLines(string(data), 4))
		}
		if len(run.Results) > 0 {
			run.Profile = pprofTop(ctx, root, bin, prof, 15, "-cum")
		}
		out = append(out, run)
	}
	return out
}

// parseGoBench reads "BenchmarkX-2  1000  1234 ns/op  56 B/op  3 allocs/op" lines.
func parseGoBench(r io.Reader, pkg string) []GoBench {
	var out []GoBench
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		b := GoBench{Package: pkg, Name: trimProcs(f[0]), N: n, Values: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			b.Values[f[i+1]] = v
		}
		out = append(out, b)
	}
	return out
}

// trimProcs drops the -GOMAXPROCS suffix: BenchmarkDecideCached-2 -> BenchmarkDecideCached.
func trimProcs(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

// pprofTop is the top of a CPU profile as `go tool pprof -top` prints it (by flat time, or
// with -cum by cumulative time).
func pprofTop(ctx context.Context, root, bin, prof string, n int, flags ...string) []string {
	args := append([]string{"tool", "pprof", "-top"}, flags...)
	args = append(args, "-nodecount", strconv.Itoa(n), bin, prof)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	data, err := cmd.Output()
	if err != nil {
		return nil
	}
	var out []string
	started := false
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "flat%") {
			started = true
			continue
		}
		if started && strings.TrimSpace(l) != "" {
			out = append(out, shortenFrame(strings.TrimSpace(l)))
		}
	}
	return out
}

// shortenFrame drops the module path and generic shapes from a pprof line.
func shortenFrame(l string) string {
	l = strings.ReplaceAll(l, "github.com/crmlink/crmlink/", "")
	if i := strings.Index(l, "[go.shape"); i >= 0 {
		if j := strings.LastIndex(l, "]"); j > i {
			l = l[:i] + "[...]" + l[j+1:]
		}
	}
	return l
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
