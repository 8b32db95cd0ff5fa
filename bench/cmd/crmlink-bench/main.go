// Command crmlink-bench measures crmlink's cost on call setup against Asterisk's own static
// dialplan with sipp, on the rig (make sandbox-up), and writes results/bench.json,
// results/bench.md and results/bench-latency.svg. `make bench` runs it:
//
//	go run ./bench/cmd/crmlink-bench [-quick] [-paths baseline,ari-cached] [-out results]
//
// It needs bin/crmlink and bin/amocrm-sandbox (make build) and sipp (Debian sip-tester),
// holds the rig lock for one path at a time, and stops by itself within -timeout. After the
// paths comes the "CRM throughput" stretch (-paths crm-throughput alone): routed call
// outcomes handed to the event path at once against amoCRM's 7 requests a second.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/crmlink/crmlink/bench"
)

func main() {
	root := flag.String("root", ".", "the crmlink repository (bin/, bench/sipp/)")
	out := flag.String("out", "results", "where the report goes")
	quick := flag.Bool("quick", false, "quick mode: fewer paths, rates and seconds (under 3 minutes)")
	lock := flag.String("lock", "/tmp/crmlink-rig.lock", "the rig lock file (shared with the end-to-end tests)")
	paths := flag.String("paths", "", "comma-separated paths to run, crm-throughput among them (default: every path of the mode)")
	gobench := flag.Bool("gobench", true, "also run the Go benchmarks of routing and scenarios")
	profile := flag.String("profile", "auto", "profiling runs of crmlink (crmlink-pprof) on the paths that have one: on, off, auto (on unless -quick)")
	render := flag.String("render", "", "only render bench.md and bench-latency.svg again from this bench.json (into -out)")
	ownConf := flag.Bool("own-conf", false, "restart the rig's Asterisk with this checkout's asterisk-conf/ inside each stretch's lock hold when it reads another's (a branch that changed the rig's conf)")
	timeout := flag.Duration("timeout", 0, "stop after this long, waiting for the rig lock included (default 30m, quick 10m: a safety net; a run takes about 14m, quick under 3m, plus lock waits)")
	cpuFor := flag.Duration("cpu-for", 0, "instead of the plan, one step per path at 100 calls/s offered this long, no search: CPU per call from many calls")
	flag.Parse()

	if *timeout == 0 {
		*timeout = 30 * time.Minute
		if *quick {
			*timeout = 10 * time.Minute
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	if *render != "" {
		rep, err := bench.ReadReport(*render)
		if err == nil {
			err = rep.Write(*out)
		}
		if err != nil {
			fatal(err)
		}
		return
	}
	absRoot, err := filepath.Abs(*root)
	if err != nil {
		fatal(err)
	}
	absOut, err := filepath.Abs(*out)
	if err != nil {
		fatal(err)
	}
	opts := bench.Options{
		Root: absRoot, Out: absOut, Quick: *quick, LockPath: *lock, GoBench: *gobench, OwnConf: *ownConf, CPUFor: *cpuFor,
		Profile: *profile == "on" || (*profile == "auto" && !*quick),
		Log: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "bench %s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
		},
	}
	if *paths != "" {
		opts.Only = strings.Split(*paths, ",")
	}
	rep, runErr := bench.Run(ctx, opts)
	if rep != nil {
		if err := rep.Write(absOut); err != nil {
			fatal(err)
		}
		fmt.Fprintf(os.Stderr, "bench: report in %s/bench.md, bench.json, bench-latency.svg (%.0f s)\n", *out, rep.Seconds)
	}
	if runErr != nil {
		fatal(runErr)
	}
	for _, p := range rep.Paths {
		if p.Error != "" {
			fatal(fmt.Errorf("path %s: %s", p.Name, p.Error))
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
