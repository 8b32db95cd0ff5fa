package e2e

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/app"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
	"github.com/crmlink/crmlink/routing"
)

// The demo account every routing test starts from. Numbers are the callers; users are the
// managers mapped to rig phones in stackConfig.
const (
	annaUser  = 1001 // PJSIP/101
	borisUser = 1002 // PJSIP/102 and PJSIP/103
	veraUser  = 1003 // PJSIP/104, off schedule today
	glebUser  = 1004 // PJSIP/105
	danaUser  = 1005 // in amoCRM but mapped to no phone

	annaClient   = "84951000001" // contact of Anna, open deal of Anna
	borisClient  = "84951000002" // contact of Boris
	veraClient   = "84951000003" // contact of Vera
	danaClient   = "84951000004" // contact of Dana (no phones mapped)
	orphanClient = "84951000005" // contact with no responsible user
	glebClient   = "84951000006" // contact of Gleb
	movingClient = "84951000007" // contact of Anna, handed to Gleb during the test
	unknownNum   = "84959999999" // no contact
	scriptClient = "84951000008" // contact of Anna whose name is markup (the live page escapes it)
)

// scriptContact is the name of scriptClient's contact: a script that marks the page if it
// ever runs, and markup that would show bold.
const scriptContact = `<script>window.__crmlinkXSS=1</script><b>Markup</b> client`

func demoSeed() sandbox.Seed {
	return sandbox.Seed{
		Token:     "e2e-token",
		RateLimit: 7,
		Users: []sandbox.User{
			{ID: annaUser, Name: "Anna"}, {ID: borisUser, Name: "Boris"}, {ID: veraUser, Name: "Vera"},
			{ID: glebUser, Name: "Gleb"}, {ID: danaUser, Name: "Dana"},
		},
		Contacts: []sandbox.Contact{
			// Cards spell numbers as people type them; the caller id comes as digits.
			{ID: 2001, Name: "Anna's client", ResponsibleUserID: annaUser, Phones: []string{"+7 (495) 100-00-01"}, LeadIDs: []int64{4001, 4002}},
			{ID: 2002, Name: "Boris's client", ResponsibleUserID: borisUser, Phones: []string{"8 495 100 00 02"}},
			{ID: 2003, Name: "Vera's client", ResponsibleUserID: veraUser, Phones: []string{"+74951000003"}},
			{ID: 2004, Name: "Dana's client", ResponsibleUserID: danaUser, Phones: []string{"84951000004"}},
			{ID: 2005, Name: "Nobody's client", Phones: []string{"84951000005"}},
			{ID: 2006, Name: "Gleb's client", ResponsibleUserID: glebUser, Phones: []string{"84951000006"}},
			{ID: 2007, Name: "Moving client", ResponsibleUserID: annaUser, Phones: []string{"84951000007"}},
			{ID: 2008, Name: scriptContact, ResponsibleUserID: annaUser, Phones: []string{scriptClient}},
		},
		Leads: []sandbox.Lead{
			{ID: 4001, Name: "open deal", StatusID: 20001, PipelineID: 1, ResponsibleUserID: annaUser, ContactIDs: []int64{2001}},
			{ID: 4002, Name: "won deal of someone else", StatusID: 142, PipelineID: 1, ResponsibleUserID: borisUser, ContactIDs: []int64{2001}},
		},
	}
}

// stack is crmlink as `crmlink serve` wires it, in process, against the rig's Asterisk and
// Redis and an amoCRM sandbox.
type stack struct {
	ast testrig.AsteriskRig
	crm *sandbox.Server
	app *app.App
	api string // http://127.0.0.1:port
	cfg *config.Config
	// outcomes receives every call the ARI controller saw end.
	outcomes chan routing.CallOutcome
	stop     func() // stops crmlink
}

const webhookSecret = "e2e-hook-secret"

// lookupTimeout is short so that the timeout tests run fast; a live sandbox answer takes
// a few milliseconds.
const lookupTimeout = 400 * time.Millisecond

func startStack(t *testing.T, tweak ...func(*config.Config)) *stack {
	t.Helper()
	ast := testrig.Asterisk(t)
	crm := sandbox.New(demoSeed(), sandbox.WithLogger(testLogger(t)))
	crmSrv := httptest.NewServer(crm)
	t.Cleanup(crmSrv.Close)
	t.Cleanup(crm.Close)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	api := "http://" + l.Addr().String()
	require.NoError(t, crm.SetWebhookURL(api+"/v1/webhooks/amocrm/"+webhookSecret))

	redisAddr, redisDB := testrig.RedisDB(t)
	cfg := config.Default()
	cfg.HTTP.Listen = l.Addr().String()
	cfg.HTTP.Token = "e2e-api-token"
	cfg.Redis.Addrs, cfg.Redis.DB = []string{redisAddr}, redisDB
	cfg.Asterisk.ARI.URL, cfg.Asterisk.ARI.WSURL = ast.ARIURL, ast.WSURL
	cfg.Asterisk.ARI.Transport, cfg.Asterisk.ARI.Ringing = ariTransport(cfg.Asterisk.ARI.Transport), ariRinging(cfg.Asterisk.ARI.Ringing)
	cfg.AmoCRM.BaseURL, cfg.AmoCRM.Token, cfg.AmoCRM.WebhookSecret = crmSrv.URL, "e2e-token", webhookSecret
	cfg.Routing.LookupTimeout = lookupTimeout
	cfg.Routing.RingTimeout = 3 * time.Second
	today := time.Now().UTC().Format("2006-01-02")
	cfg.Managers = []config.Manager{
		{CRMUser: annaUser, Name: "Anna", Endpoints: []string{"PJSIP/101"}},
		{CRMUser: borisUser, Name: "Boris", Endpoints: []string{"PJSIP/102", "PJSIP/103"}},
		{CRMUser: veraUser, Name: "Vera", Endpoints: []string{"PJSIP/104"}, Schedule: config.Schedule{Timezone: "UTC", DaysOff: []string{today}}},
		{CRMUser: glebUser, Name: "Gleb", Endpoints: []string{"PJSIP/105"}},
	}
	for _, f := range tweak {
		f(cfg)
	}
	require.Empty(t, cfg.Validate(), "test configuration")

	s := &stack{ast: ast, crm: crm, api: api, cfg: cfg, outcomes: make(chan routing.CallOutcome, 16)}
	s.serve(t, l)
	return s
}

// serve starts crmlink on the listener and waits until its Stasis application is up.
func (s *stack) serve(t *testing.T, l net.Listener) {
	t.Helper()
	a, err := app.New(s.cfg, testLogger(t))
	require.NoError(t, err)
	a.CallOutcomes = func(o routing.CallOutcome) { s.outcomes <- o }
	// Once Serve has returned the websocket is closed: Asterisk has deactivated the
	// application (it may still list it while it forgets its channels and bridges).
	s.stop = testrig.Run(t, "crmlink", func(ctx context.Context) error { return a.Serve(ctx, l) }, a.Close)
	testrig.WaitFor(t, 10*time.Second, "crmlink's Stasis application registered", func() bool {
		if a.ARI == nil { // Asterisk connects out to crmlink (asterisk.ari.inbound)
			return a.ARIInbound.Connected() && s.ast.AppRegistered(s.cfg.Asterisk.ARI.Application)
		}
		return a.ARI.Connected() && s.ast.AppRegistered("crmlink")
	})
	s.app = a
}

// restart stops crmlink and starts it again with the same configuration, Redis database
// and amoCRM, as a deploy or a crash and its supervisor would.
func (s *stack) restart(t *testing.T) {
	t.Helper()
	s.stop()
	l, err := net.Listen("tcp", strings.TrimPrefix(s.api, "http://"))
	require.NoError(t, err)
	s.serve(t, l)
}

// managerPhone starts the phone of a rig extension (101-105) and registers it with
// Asterisk until the test ends; Asterisk then shows the endpoint online.
func managerPhone(t *testing.T, ast testrig.AsteriskRig, ext string) *siptest.Phone {
	t.Helper()
	p := newPhone(t, ext, "127.0.0.1", 0)
	require.NoError(t, register(t, ast, p, ext, "120"))
	testrig.WaitFor(t, 5*time.Second, "PJSIP/"+ext+" online", func() bool { return ast.EndpointState(ext) == "online" })
	t.Cleanup(func() { _ = unregister(t, ast, p, ext) })
	return p
}

// register sends the phone's REGISTER for the extension (Expires "0" logs it out); an
// answer other than 200 fails the test.
func register(t *testing.T, ast testrig.AsteriskRig, p *siptest.Phone, ext, expires string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.Send(ctx, sip.REGISTER, "sip:"+ext+"@"+ast.SIPHost+":5060", sip.NewHeader("Expires", expires))
	if err == nil && res.StatusCode != 200 {
		t.Errorf("REGISTER %s (Expires %s): %d %s", ext, expires, res.StatusCode, res.Reason)
	}
	return err
}

// unregister logs the phone out and waits until Asterisk shows the endpoint offline; it
// returns the REGISTER's transport error.
func unregister(t *testing.T, ast testrig.AsteriskRig, p *siptest.Phone, ext string) error {
	err := register(t, ast, p, ext, "0")
	testrig.WaitFor(t, 5*time.Second, "PJSIP/"+ext+" offline", func() bool { return ast.EndpointState(ext) == "offline" })
	return err
}

// nextOutcome waits for the controller to report a finished call.
func (s *stack) nextOutcome(t *testing.T) routing.CallOutcome {
	t.Helper()
	select {
	case o := <-s.outcomes:
		return o
	case <-time.After(callWait):
		t.Fatal("no call outcome reported")
		return routing.CallOutcome{}
	}
}

// apiGet is a GET on crmlink's API with the stack's token: /v1 reveals clients.
func (s *stack) apiGet(path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, s.api+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.HTTP.Token)
	return http.DefaultClient.Do(req)
}
