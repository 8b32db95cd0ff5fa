package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/config"
)

// Numbers of [from-trunk] wired to the other front ends (asterisk-conf/extensions.conf).
const (
	agiExten      = "300"
	redirectExten = "400"
)

// withAGI turns the FastAGI server on where extensions.conf expects it.
func withAGI(c *config.Config) {
	c.AGI.Enabled = true
	c.AGI.Listen = "127.0.0.1:4573"
}

// withRedirect turns the SIP redirect server on where pjsip.conf expects it.
func withRedirect(c *config.Config) {
	c.SIP.Enabled = true
	c.SIP.Listen = "127.0.0.1:5070"
	c.SIP.ContactTemplate = "sip:{user}@127.0.0.1:5060"
	c.SIP.FallbackContact = "sip:fallback-{reason}-{owner}-{source}@127.0.0.1:5060"
}

func TestFastAGIRoutesKnownCallerToOwner(t *testing.T) {
	s := startStack(t, withAGI)
	anna := managerPhone(t, s.ast, "101")
	caller := newCaller(t, s.ast, annaClient)

	call := dial(t, s.ast, caller, agiExten)

	in := nextIncoming(t, anna, callWait)
	assert.Equal(t, annaClient, in.From())
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, in.Answer(ctx))
	res, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
	assert.Equal(t, 200, res.StatusCode)
	for name, want := range map[string]string{"CRMLINK_RESULT": "ROUTED", "CRMLINK_OWNER": "1001", "CRMLINK_SOURCE": "crm", "CRMLINK_DIAL": "PJSIP/101"} {
		got, err := s.ast.CallerChannelVar(annaClient, name)
		require.NoError(t, err)
		assert.Equal(t, want, got, name)
	}
}

func TestFastAGIFallbacks(t *testing.T) {
	t.Run("unknown number", func(t *testing.T) {
		s := startStack(t, withAGI)
		operator := newPhone(t, "100", "127.0.0.1", operatorPort)
		dial(t, s.ast, newCaller(t, s.ast, unknownNum), agiExten)
		expectFallback(t, operator, "not_found", 0)
	})
	t.Run("CRM hangs: fallback within the lookup timeout", func(t *testing.T) {
		s := startStack(t, withAGI)
		operator := newPhone(t, "100", "127.0.0.1", operatorPort)
		s.crm.HangAll(true)
		t.Cleanup(func() { s.crm.HangAll(false) })
		start := time.Now()
		dial(t, s.ast, newCaller(t, s.ast, annaClient), agiExten)
		expectFallback(t, operator, "timeout", 0)
		assert.LessOrEqual(t, time.Since(start), lookupTimeout+100*time.Millisecond)
	})
	t.Run("owner does not answer", func(t *testing.T) {
		s := startStack(t, withAGI, func(c *config.Config) { c.Routing.RingTimeout = 2 * time.Second })
		operator := newPhone(t, "100", "127.0.0.1", operatorPort)
		anna := managerPhone(t, s.ast, "101")
		dial(t, s.ast, newCaller(t, s.ast, annaClient), agiExten)
		nextIncoming(t, anna, callWait)
		expectFallback(t, operator, "owner_no_answer", annaUser)
	})
	t.Run("phone unregistered since the last presence refresh: owner_unavailable", func(t *testing.T) {
		expectOwnerLoggedOutUnavailable(t, startStack(t, withAGI), agiExten)
	})
	t.Run("crmlink not running: AGISTATUS=FAILURE", func(t *testing.T) {
		s := startStack(t) // FastAGI off: nothing listens on 4573
		operator := newPhone(t, "100", "127.0.0.1", operatorPort)
		dial(t, s.ast, newCaller(t, s.ast, annaClient), agiExten)
		in := nextIncoming(t, operator, callWait)
		assert.Equal(t, "FAILURE", in.Header("X-CRMLINK-Status"))
	})
}

func TestSIPRedirectRoutesKnownCallerToOwner(t *testing.T) {
	s := startStack(t, withRedirect)
	anna := managerPhone(t, s.ast, "101")
	caller := newCaller(t, s.ast, annaClient)

	call := dial(t, s.ast, caller, redirectExten)

	in := nextIncoming(t, anna, callWait)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, in.Answer(ctx))
	res, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
	assert.Equal(t, 200, res.StatusCode, "Asterisk followed the 302 to the owner's phone")
}

func TestSIPRedirectFallbacks(t *testing.T) {
	t.Run("unknown number", func(t *testing.T) {
		s := startStack(t, withRedirect)
		operator := newPhone(t, "100", "127.0.0.1", operatorPort)
		dial(t, s.ast, newCaller(t, s.ast, unknownNum), redirectExten)
		expectFallback(t, operator, "not_found", 0)
	})
	t.Run("CRM hangs", func(t *testing.T) {
		s := startStack(t, withRedirect)
		operator := newPhone(t, "100", "127.0.0.1", operatorPort)
		s.crm.HangAll(true)
		t.Cleanup(func() { s.crm.HangAll(false) })
		start := time.Now()
		dial(t, s.ast, newCaller(t, s.ast, annaClient), redirectExten)
		expectFallback(t, operator, "timeout", 0)
		assert.LessOrEqual(t, time.Since(start), lookupTimeout+100*time.Millisecond)
	})
	// The dialplan of the fallback learns all four, as with ARI and FastAGI: the README's
	// [crmlink-fallback] promises CRMLINK_RESULT, _REASON, _OWNER and _SOURCE.
	t.Run("owner off schedule: reason, owner and source reach the fallback", func(t *testing.T) {
		s := startStack(t, withRedirect)
		operator := newPhone(t, "100", "127.0.0.1", operatorPort)
		dial(t, s.ast, newCaller(t, s.ast, veraClient), redirectExten) // Vera has today off
		in := expectFallback(t, operator, "owner_unavailable", veraUser)
		assert.Equal(t, "crm", in.Header("X-CRMLINK-Source"), "CRMLINK_SOURCE the dialplan saw")
	})
}

// GET /v1/route gives the same decision the PBX gets; PUT availability needs the token and
// takes effect on the next call.
func TestHTTPRouteAndManagerAvailability(t *testing.T) {
	s := startStack(t)
	operator := newPhone(t, "100", "127.0.0.1", operatorPort)
	managerPhone(t, s.ast, "101")

	var d struct {
		Result  string `json:"result"`
		Owner   int64  `json:"owner"`
		Source  string `json:"source"`
		Targets []struct {
			Endpoint string `json:"endpoint"`
		} `json:"targets"`
		Steps []struct {
			Name string `json:"name"`
		} `json:"steps"`
	}
	route := func(token string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, s.api+"/v1/route?number="+annaClient, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return resp
	}
	resp := route("")
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode, "whose client a number is needs a token")
	resp = route(s.cfg.HTTP.Token)
	require.Equal(t, 200, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
	resp.Body.Close()
	assert.Equal(t, "ROUTED", d.Result)
	assert.Equal(t, int64(annaUser), d.Owner)
	require.Len(t, d.Targets, 1)
	assert.Equal(t, "PJSIP/101", d.Targets[0].Endpoint)
	assert.NotEmpty(t, d.Steps)

	put := func(token, body string) int {
		req, _ := http.NewRequest(http.MethodPut, s.api+"/v1/managers/1001/availability", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, 401, put("", `{"state":"unavailable"}`), "no token")
	assert.Equal(t, 401, put("wrong", `{"state":"unavailable"}`), "wrong token")
	assert.Equal(t, 400, put(s.cfg.HTTP.Token, `{"state":"asleep"}`))
	assert.Equal(t, 200, put(s.cfg.HTTP.Token, `{"state":"unavailable"}`))

	dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)
	expectFallback(t, operator, "owner_unavailable", annaUser)
}

// A webhook with the wrong secret or garbage is refused with 4xx and changes nothing.
func TestAmoCRMWebhookRejectsBadInput(t *testing.T) {
	s := startStack(t)
	post := func(path, body string) int {
		resp, err := http.Post(s.api+path, "application/x-www-form-urlencoded", bytes.NewBufferString(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	good := "contacts[update][0][id]=2007&contacts[update][0][responsible_user_id]=1004&contacts[update][0][type]=contact&account[subdomain]=sandbox"
	assert.Equal(t, 401, post("/v1/webhooks/amocrm/wrong-secret", good))
	assert.Equal(t, 400, post("/v1/webhooks/amocrm/"+webhookSecret, "%%%garbage"))
	assert.Equal(t, 400, post("/v1/webhooks/amocrm/"+webhookSecret, "hello=world"))
	assert.Equal(t, 200, post("/v1/webhooks/amocrm/"+webhookSecret, good))
}
