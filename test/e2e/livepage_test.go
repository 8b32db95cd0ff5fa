package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
)

// viewerToken is the stack's http.read_token in the live page tests.
const viewerToken = "e2e-viewer-token"

// liveWait is the bar: the page shows a call's change within a second of it.
const liveWait = time.Second

// screenshotDir is where the live page tests leave screenshots for a person to look at:
// CRMLINK_TEST_ARTIFACTS, else results/e2e/ in the checkout (ignored by git).
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("CRMLINK_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "results", "e2e")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	return abs
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	require.NoError(t, chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)))
	path := filepath.Join(screenshotDir(t), name+".png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

// pageLogin opens /ui/ and logs in with the token.
func pageLogin(t *testing.T, ctx context.Context, api, token string) {
	t.Helper()
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(api+"/ui/"),
		chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", token, chromedp.ByID),
		chromedp.Submit("#login", chromedp.ByID),
		chromedp.WaitVisible(`#conn[data-state="live"]`, chromedp.ByQuery),
	))
}

// waitPage waits until the JavaScript condition holds in the page and returns how long it
// took; the test fails past within.
func waitPage(t *testing.T, ctx context.Context, what, cond string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var ok bool
	err := chromedp.Run(ctx, chromedp.Poll(cond, &ok, chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(within)))
	took := time.Since(start)
	require.NoError(t, err, "the page did not show %s within %s", what, within)
	return took
}

func pageText(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	var s string
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(expr, &s)))
	return s
}

func TestLivePageViewerCannotReplay(t *testing.T) {
	s := startStack(t, func(c *config.Config) { c.HTTP.ReadToken = viewerToken })
	ctx := testrig.Browser(t)

	pageLogin(t, ctx, s.api, viewerToken)
	var hasReplay bool
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`document.getElementById('replay') !== null`, &hasReplay)))
	assert.False(t, hasReplay, "the viewer sees no replay button")
	assert.Equal(t, "viewer", pageText(t, ctx, `document.body.dataset.role`))
	// The request the admin's button sends, sent from the viewer's page.
	var status int
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(
		`fetch('/v1/queue/dead/replay', {method: 'POST', credentials: 'same-origin', headers: {'X-CRMLINK-UI': '1'}}).then(r => r.status)`,
		&status, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })))
	assert.Equal(t, http.StatusForbidden, status, "the viewer's replay from the page")
	req, err := http.NewRequest(http.MethodPost, s.api+"/v1/queue/dead/replay", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "the viewer token's replay over the API")
	screenshot(t, ctx, "live-page-viewer")

	require.NoError(t, chromedp.Run(ctx, chromedp.Click("#logout", chromedp.ByID), chromedp.WaitVisible("#token", chromedp.ByID)))
	pageLogin(t, ctx, s.api, s.cfg.HTTP.Token)
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`document.getElementById('replay') !== null`, &hasReplay)))
	assert.True(t, hasReplay, "the admin sees the replay button")
	require.NoError(t, chromedp.Run(ctx, chromedp.Click("#replay", chromedp.ByID)))
	waitPage(t, ctx, "the replay's answer", `document.getElementById('replay-result').textContent === 'replayed 0'`, 5*time.Second)
}

func TestLivePageShowsACallRingingTalkingAndInTodaysFigures(t *testing.T) {
	s := startStack(t, func(c *config.Config) { c.HTTP.ReadToken = viewerToken; c.UI.Timezone = "Europe/Moscow" })
	watchACall(t, s, ariExten, scriptClient, func(ctx context.Context) {
		// The contact's name is text: no element of it in the page, no script ran.
		assert.Equal(t, scriptContact, pageText(t, ctx, `document.querySelector('#calls td.contact').textContent`))
		var elements int
		require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll('#calls script, #calls td.contact *').length + (window.__crmlinkXSS ? 100 : 0)`, &elements)))
		assert.Zero(t, elements, "the <script> contact rendered as text")
		screenshot(t, ctx, "live-page-ringing")
	})
}

// TestLivePageShowsCallsTheObserverFollows: a call FastAGI routes never enters Stasis;
// the observer reports it, with the contact's name the decision found.
func TestLivePageShowsCallsTheObserverFollows(t *testing.T) {
	s := observingStack(t, withAGI, func(c *config.Config) { c.HTTP.ReadToken = viewerToken })
	watchACall(t, s, agiExten, annaClient, func(ctx context.Context) {
		assert.Equal(t, "Anna's client", pageText(t, ctx, `document.querySelector('#calls td.contact').textContent`))
	})
}

// watchACall logs in as the viewer, calls exten from the client's number, and follows the
// call on the page: ringing Anna within a second of her phone ringing (then whileRinging
// runs), talking within a second of her answer, then gone from Now and counted in her
// figures of today.
func watchACall(t *testing.T, s *stack, exten, client string, whileRinging func(ctx context.Context)) {
	anna := managerPhone(t, s.ast, "101")
	ctx := testrig.Browser(t)
	pageLogin(t, ctx, s.api, viewerToken)
	annaRow := `#figures tr[data-manager="` + strconv.Itoa(annaUser) + `"]`
	waitPage(t, ctx, "Anna in today's figures", `document.querySelector('`+annaRow+`') !== null`, 5*time.Second)
	answeredBefore, err := strconv.Atoi(pageText(t, ctx, `document.querySelector('`+annaRow+` td.answered').textContent`))
	require.NoError(t, err)

	caller := newCaller(t, s.ast, client)
	call := dial(t, s.ast, caller, exten)
	in := nextIncoming(t, anna, callWait)
	took := waitPage(t, ctx, "the ringing call", `[...document.querySelectorAll('#calls tr[data-state="ringing"] td.caller')].some(td => td.textContent.includes('`+client+`'))`, liveWait)
	t.Logf("ringing call on the page %s after Anna's phone rang", took)
	assert.Contains(t, pageText(t, ctx, `document.querySelector('#calls td.who').textContent`), "Anna")
	assert.Contains(t, pageText(t, ctx, `document.querySelector('#calls td.routing').textContent`), "routed to Anna")
	whileRinging(ctx)

	answer(t, in, call)
	took = waitPage(t, ctx, "Anna talking", `[...document.querySelectorAll('#calls tr[data-state="talking"] td.who')].some(td => td.textContent.includes('Anna'))`, liveWait)
	t.Logf("talking manager on the page %s after the answer", took)
	time.Sleep(1200 * time.Millisecond) // a talk time the figures show (whole seconds)
	screenshot(t, ctx, "live-page-talking-"+exten)

	hangupBoth(t, in, call)
	waitPage(t, ctx, "the call gone from Now", `document.querySelectorAll('#calls tr').length === 0`, 3*time.Second)
	waitPage(t, ctx, "the call in Anna's figures", `document.querySelector('`+annaRow+` td.answered').textContent === '`+strconv.Itoa(answeredBefore+1)+`'`, 3*time.Second)
	assert.NotEqual(t, "0:00", pageText(t, ctx, `document.querySelector('`+annaRow+` td.talk').textContent`), "talk time counted")
	assert.NotEmpty(t, pageText(t, ctx, `document.querySelector('`+annaRow+` td.median').textContent`), "time to answer counted")
	screenshot(t, ctx, "live-page-today-"+exten)
}
