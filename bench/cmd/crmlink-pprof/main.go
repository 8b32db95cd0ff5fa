// Command crmlink-pprof is `crmlink serve` with a CPU profile: the same wiring (app.New,
// then Run until SIGTERM) and, while it runs, runtime/pprof writing to --cpuprofile. The
// benchmark runs it in place of bin/crmlink for a profiling run only, so crmlink itself
// carries no profiling code:
//
//	crmlink-pprof --config crmlink.yaml --cpuprofile crmlink.cpu.pprof [--pprof 127.0.0.1:6060]
//
// --pprof also serves net/http/pprof on that (loopback) address, for goroutine dumps while
// it runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof" // only in this profiling twin, never in crmlink
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/crmlink/crmlink/internal/app"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/logging"
)

func main() {
	cfgPath := flag.String("config", "", "configuration file")
	profPath := flag.String("cpuprofile", "crmlink.cpu.pprof", "where the CPU profile goes")
	debugAddr := flag.String("pprof", "", "also serve net/http/pprof here (loopback), e.g. 127.0.0.1:6060")
	floorMode := flag.String("floor", "", "instead of crmlink, the Stasis hop alone (floor.go): continue, vars, follow, nofilter, comma-separated")
	flag.Parse()
	if *debugAddr != "" {
		go func() {
			fmt.Fprintln(os.Stderr, "crmlink-pprof: pprof listener:", http.ListenAndServe(*debugAddr, nil))
		}()
	}
	if err := run(*cfgPath, *profPath, *floorMode); err != nil {
		fmt.Fprintln(os.Stderr, "crmlink-pprof:", err)
		os.Exit(1)
	}
}

func run(cfgPath, profPath, floorMode string) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	f, err := os.Create(profPath)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if floorMode != "" {
		return floor(ctx, cfg, floorMode)
	}
	a, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}
