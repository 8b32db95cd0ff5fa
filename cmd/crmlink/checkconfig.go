package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/crmlink/crmlink/internal/app"
	"github.com/crmlink/crmlink/internal/config"
)

// checkConfig prints OK, or every problem one per line, and exits non-zero on problems.
// With --online it also asks amoCRM and the synced chat platforms whether the users the
// file names exist there (app.VerifyOnline).
func checkConfig(args []string, stdout, stderr io.Writer) int {
	online := len(args) == 2 && args[0] == "--online"
	if online {
		args = args[1:]
	}
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: crmlink check-config [--online] FILE")
		return 2
	}
	cfg, err := config.Load(args[0])
	if err != nil {
		printConfigErrors(stderr, args[0], err)
		return 1
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stderr, "warning: "+w)
	}
	if !online {
		fmt.Fprintln(stdout, "OK")
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), onlineTimeout)
	defer cancel()
	problems, asked, err := app.VerifyOnline(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "%s: valid, but the online check could not finish: %v\n", args[0], err)
		return 1
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "%s: %d problem(s) found online (%s):\n", args[0], len(problems), asked)
		for _, p := range problems {
			fmt.Fprintln(stderr, "  "+p)
		}
		return 1
	}
	fmt.Fprintf(stdout, "OK (%s)\n", asked)
	return 0
}

// printConfigErrors prints why a file was refused, one problem a line. check-config and
// serve print it alike: the systemd pre-check shows what the start would.
func printConfigErrors(w io.Writer, path string, err error) {
	var errs config.Errors
	if !errors.As(err, &errs) {
		fmt.Fprintln(w, err)
		return
	}
	fmt.Fprintf(w, "%s: %d error(s):\n", path, len(errs))
	for _, e := range errs {
		fmt.Fprintln(w, "  "+e)
	}
}

// onlineTimeout bounds check-config --online: a few API reads.
const onlineTimeout = 30 * time.Second
