package testrig

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser starts Debian's headless Chromium (installed by `make sandbox-up`) for one test and
// returns a chromedp context on a fresh tab; the browser is closed when the test ends. Without
// Chromium the test fails when CRMLINK_TEST_RIG=required and is skipped otherwise.
// CRMLINK_TEST_CHROMIUM names another binary.
func Browser(t testing.TB) context.Context {
	t.Helper()
	bin := os.Getenv("CRMLINK_TEST_CHROMIUM")
	if bin == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				bin = p
				break
			}
		}
	}
	if bin == "" {
		if os.Getenv("CRMLINK_TEST_RIG") == "required" {
			t.Fatalf("testrig: no headless Chromium (`make sandbox-up` installs Debian's chromium)")
		}
		t.Skipf("testrig: no headless Chromium; `make sandbox-up` installs it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // tests run as root in CI
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// Start the browser now, so a broken install fails here with its error. The first Run
	// ties the browser's life to its context: it gets the tab's own, bounded by a timer.
	slow := time.AfterFunc(30*time.Second, cancelTab)
	err := chromedp.Run(ctx)
	if !slow.Stop() || err != nil {
		t.Fatalf("testrig: starting %s (30 s): %v", bin, err)
	}
	return ctx
}
