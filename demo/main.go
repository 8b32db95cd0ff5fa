// Command demo is `make demo`: crmlink routing real calls within a minute or two.
//
// It starts the test rig (a real Asterisk 22 and Redis, docker/rig.sh), the amoCRM sandbox
// seeded with a small company (demo/seed.yaml) and crmlink on a short configuration file
// (its embedded defaults plus the CRM address and the managers), then places real SIP calls
// with the test phone of pbx/sip/siptest through Asterisk: a known client, an unknown
// number, a manager off schedule, a CRM that hangs, and a call nobody answers. For each it
// prints who rang, CRMLINK_RESULT / CRMLINK_REASON and the CRM records crmlink wrote, as a
// table, and stops crmlink and the sandbox. The rig stays up, as `make sandbox-up` leaves
// it (it is shared with the tests; `make sandbox-down` stops it); --stop-rig stops a rig
// the demo itself started.
//
// It is also a smoke test: the exit status is 1 when a scenario did not do what it should.
//
// The calls are placed while holding the rig lock (/tmp/crmlink-rig.lock, as `make e2e`
// and the benchmark do): crmlink's Stasis application and the phones' fixed ports exist
// once per rig.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}

type options struct {
	root     string // the repository
	bin      string // crmlink and amocrm-sandbox
	work     string // config, logs and data of this run
	seed     string
	lock     string
	lockWait time.Duration
	stopRig  bool
	// exit stops crmlink after the table instead of leaving the live page up.
	exit bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	cache := os.Getenv("CRMLINK_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "crmlink")
	}
	lock := os.Getenv("CRMLINK_RIG_LOCK")
	if lock == "" {
		lock = "/tmp/crmlink-rig.lock"
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bin, "bin", "bin", "directory with crmlink and amocrm-sandbox (make build); built there when missing")
	fs.StringVar(&o.work, "work", filepath.Join(cache, "demo"), "where this run keeps crmlink.yaml, the logs and crmlink's data_dir (emptied first)")
	fs.StringVar(&o.seed, "seed", "demo/seed.yaml", "the amoCRM sandbox's seed: the demo company")
	fs.StringVar(&o.lock, "lock", lock, "the rig lock held while calls are placed (env CRMLINK_RIG_LOCK)")
	fs.DurationVar(&o.lockWait, "lock-wait", 20*time.Minute, "how long to wait for the rig lock")
	fs.BoolVar(&o.exit, "exit", false, "stop crmlink after the table (by default it stays up, with the live page, until Ctrl-C)")
	fs.BoolVar(&o.stopRig, "stop-rig", false, "stop the rig at the end if the demo started it (by default it stays up, as after make sandbox-up)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	root, err := repoRoot()
	if err != nil {
		return o, err
	}
	o.root = root
	for _, p := range []*string{&o.bin, &o.seed} {
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(root, *p)
		}
	}
	return o, nil
}

// repoRoot is the directory above the working directory that holds go.mod and docker/rig.sh.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "docker", "rig.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the demo from the crmlink repository (make demo): docker/rig.sh not found above the working directory")
		}
		dir = parent
	}
}

func run(args []string, stdout io.Writer) int {
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{opts: o, out: stdout, started: time.Now()}
	rows, err := d.run(ctx)
	if len(rows) > 0 {
		fmt.Fprintln(stdout)
		printTable(stdout, rows)
	}
	failed := 0
	for _, r := range rows {
		if !r.ok() {
			failed++
		}
	}
	code := 0
	switch {
	case ctx.Err() != nil:
		d.cleanup()
		fmt.Fprintln(stdout, "\ndemo interrupted; crmlink and the sandbox are stopped")
		return 130
	case err != nil:
		fmt.Fprintf(stdout, "\ndemo FAILED: %v\n", err)
		d.pointAtLogs()
		code = 1
	case failed > 0:
		fmt.Fprintf(stdout, "\ndemo FAILED: %d of %d scenarios did not do what they should (see the problems above)\n", failed, len(rows))
		d.pointAtLogs()
		code = 1
	default:
		fmt.Fprintf(stdout, "\nAll %d scenarios did what they should (%s). Logs and the configuration: %s\n",
			len(rows), time.Since(d.started).Round(time.Second), o.work)
	}
	if err == nil && !o.exit {
		d.stayUp(ctx)
	}
	d.cleanup()
	return code
}

// stayUp leaves crmlink running with the live page until Ctrl-C (or until crmlink stops),
// still holding the rig lock: crmlink's Stasis application is registered on the rig.
func (d *demo) stayUp(ctx context.Context) {
	if d.crmlink.exited() {
		// The last scenario stopped it: the same configuration and data_dir again, so the
		// page's figures of today show they survive a restart.
		fmt.Fprintln(d.out, "\n==> crmlink again, for the live page (same configuration and data_dir)")
		if err := d.launchCrmlink(ctx, "crmlink-live.log"); err != nil {
			fmt.Fprintf(d.out, "crmlink did not start again: %v\n", err)
			return
		}
		d.stoppedCrmlink = false
	}
	fmt.Fprintf(d.out, "\nThe live page: %s/ui/\n  admin token:  %s\n  viewer token: %s\n", d.apiURL, d.ui.admin, d.ui.viewer)
	fmt.Fprintln(d.out, "crmlink stays up (holding the rig lock) while you look; call 200 on the rig to see calls. Ctrl-C stops it.")
	select {
	case <-ctx.Done():
	case <-d.crmlink.done:
		fmt.Fprintf(d.out, "crmlink stopped: %v\n", d.crmlink.werr)
	}
}
