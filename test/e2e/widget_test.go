package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/clicktocall"
	"github.com/crmlink/crmlink/internal/testrig"
)

// widgetDir is the amoCRM widget as it is uploaded (make widget).
var widgetDir = filepath.Join("..", "..", "deploy", "amocrm-widget")

// amoPage is a card of amoCRM with the part of amoCRM's widget JS API the widget uses,
// written from amoCRM's widget docs: RequireJS's define() hands over the widget's
// constructor; the system methods get_settings(), add_action() and i18n() are on the
// widget object; APP.constant('user') is the signed-in user; APP.notifications shows
// messages. amoCRM calls render, init and bind_actions in that order, and a click on a
// phone number calls the "phone" action with {value: <the number>}.
const amoPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>Anna's client</title>
<script>
var amo = {actions: {}, messages: [], widget: null};
window.APP = {
  constant: function (key) { return key === 'user' ? {id: 1001, name: 'Anna'} : false; },
  notifications: {
    show_message: function (p) { amo.messages.push({ok: true, header: p.header, text: p.text}); },
    show_message_error: function (p) { amo.messages.push({ok: false, header: p.header, text: p.text}); }
  }
};
window.define = function (deps, factory) {
  var Widget = factory();
  Widget.prototype.get_settings = function () { return SETTINGS; };
  Widget.prototype.add_action = function (type, action) { amo.actions[type] = action; };
  Widget.prototype.i18n = function (key) { return LANG[key]; };
  Widget.prototype.system = function () { return {area: 'ccard', amouser_id: 1001}; };
  var w = new Widget();
  amo.widget = w;
  if (w.callbacks.render() && w.callbacks.init() && w.callbacks.bind_actions()) {
    document.getElementById('ready').textContent = 'ready';
  }
};
</script></head>
<body>
<div id="ready"></div>
<div class="card">Anna's client: <a id="phone" href="#" onclick="amo.actions.phone({value: this.textContent}); return false;">+7 (495) 100-00-01</a></div>
<script src="/widget/script.js"></script>
</body></html>`

// widgetSite serves amoPage and the widget's files from an origin of its own, as amoCRM
// serves the card the widget runs in.
type widgetSite struct {
	*httptest.Server
	mu   sync.Mutex
	page string
}

func newWidgetSite(t *testing.T) *widgetSite {
	t.Helper()
	w := &widgetSite{}
	mux := http.NewServeMux()
	mux.Handle("/widget/", http.StripPrefix("/widget/", http.FileServer(http.Dir(widgetDir))))
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		defer w.mu.Unlock()
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = rw.Write([]byte(w.page))
	})
	w.Server = httptest.NewServer(mux)
	t.Cleanup(w.Close)
	return w
}

// show sets the widget's settings on the page: the crmlink URL and the "users" field,
// {user id: key}, as amoCRM hands it over (JSON text); and its English texts.
func (w *widgetSite) show(t *testing.T, api string, keys map[string]string) {
	t.Helper()
	lang, err := os.ReadFile(filepath.Join(widgetDir, "i18n", "en.json"))
	require.NoError(t, err)
	keysJSON, err := json.Marshal(keys)
	require.NoError(t, err)
	settings, err := json.Marshal(map[string]string{"crmlink_url": api + "/", "keys": string(keysJSON)})
	require.NoError(t, err)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.page = strings.Replace(amoPage, "<script>", "<script>var SETTINGS = "+string(settings)+"; var LANG = "+string(lang)+";", 1)
}

// openCardAndClick loads the card, waits for the widget's callbacks and clicks the number.
func openCardAndClick(t *testing.T, ctx context.Context, site *widgetSite) {
	t.Helper()
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(site.URL+"/"),
		chromedp.Poll(`document.getElementById('ready').textContent === 'ready'`, nil),
		chromedp.Click(`#phone`, chromedp.ByID),
	))
}

type amoMessage struct {
	OK   bool   `json:"ok"`
	Text string `json:"text"`
}

// pageMessages are the notifications the widget showed.
func pageMessages(t *testing.T, ctx context.Context) []amoMessage {
	t.Helper()
	var out []amoMessage
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`amo.messages`, &out)))
	return out
}

// In a real browser, Anna clicks her client's number on the card: the widget asks
// crmlink with her own key (another origin: CORS), her phone rings, she answers, and the
// client's line rings with her caller id.
func TestWidgetClickRingsTheManagerThenTheClient(t *testing.T) {
	ctx := testrig.Browser(t)
	site := newWidgetSite(t)
	s := clickToCallStack(t, site.URL)
	anna := managerPhone(t, s.ast, "101")
	client := newPhone(t, "pstn", s.ast.TrunkHost, 5060)
	site.show(t, s.api, map[string]string{"1001": clicktocall.Key(keySecret, annaUser), "1002": clicktocall.Key(keySecret, borisUser)})

	tctx, cancel := context.WithTimeout(ctx, 2*callWait)
	defer cancel()
	openCardAndClick(t, tctx, site)
	ring := nextIncoming(t, anna, callWait)
	assert.Equal(t, "+74951000001", ring.From(), "Anna's phone shows the client's number")
	testrig.WaitFor(t, callWait, "the widget told Anna her phone rings", func() bool {
		m := pageMessages(t, tctx)
		return len(m) > 0 && m[0].OK && strings.Contains(m[0].Text, "Your phone is ringing")
	})
	callCtx, cancelCall := context.WithTimeout(context.Background(), callWait)
	defer cancelCall()
	require.NoError(t, ring.Answer(callCtx))
	in := nextIncoming(t, client, callWait)
	assert.Equal(t, clickedDial, in.To())
	assert.Equal(t, annaCallerID, in.From(), "the client sees Anna's caller id")
	require.NoError(t, in.Reject(486))
	testrig.WaitFor(t, callWait, "the widget told Anna the client was busy", func() bool {
		for _, m := range pageMessages(t, tctx) {
			if !m.OK && strings.Contains(m.Text, "is busy") {
				return true
			}
		}
		return false
	})
}

// A refusal reaches the page with crmlink's reason: Boris's key on Anna's browser.
func TestWidgetShowsWhyCrmlinkRefused(t *testing.T) {
	ctx := testrig.Browser(t)
	site := newWidgetSite(t)
	s := clickToCallStack(t, site.URL)
	anna := managerPhone(t, s.ast, "101")
	site.show(t, s.api, map[string]string{"1001": clicktocall.Key(keySecret, borisUser)})

	tctx, cancel := context.WithTimeout(ctx, callWait)
	defer cancel()
	openCardAndClick(t, tctx, site)
	testrig.WaitFor(t, callWait, "the widget showed crmlink's reason", func() bool {
		m := pageMessages(t, tctx)
		return len(m) > 0 && !m[0].OK && strings.Contains(m[0].Text, "1002")
	})
	time.Sleep(200 * time.Millisecond)
	notRung(t, anna)
}
