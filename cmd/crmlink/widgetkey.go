package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/crmlink/crmlink/clicktocall"
)

// widgetKey prints a manager's click-to-call key for the amoCRM widget's settings: the
// HMAC of their CRM user id under click_to_call.key_secret, so nothing is stored and a
// new secret revokes every key.
func widgetKey(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("widget-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("CRMLINK_CONFIG"), "configuration file (env CRMLINK_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: crmlink widget-key [--config FILE] CRM_USER_ID")
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		printConfigErrors(stderr, *path, err)
		return 1
	}
	user, err := strconv.ParseInt(fs.Arg(0), 10, 64)
	if err != nil || user <= 0 {
		fmt.Fprintf(stderr, "crmlink widget-key: %q is not an amoCRM user id (a positive number)\n", fs.Arg(0))
		return 2
	}
	if len(cfg.ClickToCall.KeySecret) < clicktocall.MinSecretLen {
		fmt.Fprintf(stderr, "crmlink widget-key: click_to_call.key_secret (env CRMLINK_CLICK_TO_CALL_KEY_SECRET) is not set; set at least %d random characters\n", clicktocall.MinSecretLen)
		return 1
	}
	listed := false
	for _, m := range cfg.Managers {
		listed = listed || m.CRMUser == user
	}
	if !listed {
		fmt.Fprintf(stderr, "crmlink widget-key: warning: %d is not under managers:, so calls with this key are refused 404 until it is\n", user)
	}
	fmt.Fprintln(stdout, clicktocall.Key(cfg.ClickToCall.KeySecret, user))
	return 0
}
