package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/crmlink/crmlink/internal/config"
)

// checkConfig prints OK, or every problem one per line, and exits non-zero on problems.
func checkConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: crmlink check-config FILE")
		return 2
	}
	if _, err := config.Load(args[0]); err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			fmt.Fprintf(stderr, "%s: %d error(s):\n", args[0], len(errs))
			for _, e := range errs {
				fmt.Fprintln(stderr, "  "+e)
			}
			return 1
		}
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "OK")
	return 0
}
