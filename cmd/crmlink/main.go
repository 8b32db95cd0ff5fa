// Command crmlink is the server between Asterisk, amoCRM and chat platforms.
//
//	crmlink serve [--config FILE]          run the server (embedded defaults without a file)
//	crmlink route [--config FILE] NUMBER   explain the routing decision for a caller
//	crmlink check-config [--online] FILE   print OK or every configuration error; --online
//	                                       also asks amoCRM and the chat platforms whether
//	                                       the users it names exist
//	crmlink widget-key [--config FILE] USER print a manager's click-to-call key for the
//	                                       amoCRM widget (click_to_call.key_secret)
//	crmlink version                        print the version
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time: -ldflags "-X main.version=..."
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "route":
		return route(args[1:], stdout, stderr)
	case "check-config":
		return checkConfig(args[1:], stdout, stderr)
	case "widget-key":
		return widgetKey(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "crmlink", version)
		return 0
	case "help", "--help", "-h":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "crmlink: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  crmlink serve [--config FILE]    run the server (embedded defaults without a file)
  crmlink check-config [--online] FILE
                                   print OK or every configuration error; --online also
                                   asks amoCRM and the chat platforms whether its users exist
  crmlink widget-key [--config FILE] CRM_USER_ID
                                   print a manager's click-to-call key for the amoCRM widget
  crmlink version                  print the version
`)
}
