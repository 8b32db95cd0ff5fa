package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/crmlink/crmlink/internal/app"
	"github.com/crmlink/crmlink/internal/logging"
	"github.com/crmlink/crmlink/routing"
)

// route explains one decision: the same lookup a call would make, printed as JSON with
// every step and its timing.
func route(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("route", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("CRMLINK_CONFIG"), "configuration file (env CRMLINK_CONFIG)")
	called := fs.String("called", "", "the dialled number, for logs and conditions")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: crmlink route [--config FILE] NUMBER")
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		printConfigErrors(stderr, *path, err)
		return 1
	}
	log, err := logging.New(stderr, "warn", "auto")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	p, err := app.New(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Routing.LookupTimeout+5*time.Second)
	defer cancel()
	d := p.Decider.Decide(ctx, routing.Call{Caller: fs.Arg(0), Called: *called})
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(d)
	return 0
}
