package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/clicktocall"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
	"github.com/crmlink/crmlink/routing"
)

const (
	// keySecret derives the managers' click-to-call keys in these tests.
	keySecret = "e2e-click-to-call-secret-0123456789abcdef"
	// annaCallerID is the number Anna's clients see when crmlink calls them for her.
	annaCallerID = "+74950000101"
	// clickedNumber is Anna's client's number as the card spells it; clickedDial is how
	// the outgoing context dials it.
	clickedNumber = "+7 (495) 100-00-01"
	clickedDial   = annaClient
)

// withClickToCall turns click-to-call on, with Anna's caller id; the observer records
// the calls it places.
func withClickToCall(origins ...string) func(*config.Config) {
	return func(c *config.Config) {
		withObserver(c)
		c.ClickToCall.Enabled = true
		c.ClickToCall.KeySecret = keySecret
		c.ClickToCall.AllowedOrigins = origins
		for i := range c.Managers {
			if c.Managers[i].CRMUser == annaUser {
				c.Managers[i].CallerID = annaCallerID
			}
		}
	}
}

// clickToCallStack is the stack with click-to-call and the observer ready.
func clickToCallStack(t *testing.T, origins ...string) *stack {
	t.Helper()
	s := observingStack(t, withClickToCall(origins...))
	testrig.WaitFor(t, 10*time.Second, "click-to-call connected", s.app.Dialer.Connected)
	return s
}

// callAPI sends a request to the calls endpoint with the bearer auth (none when empty)
// and returns the status and the decoded JSON answer.
func callAPI(t *testing.T, s *stack, method, path, auth string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		if raw, ok := body.(string); ok {
			rd = bytes.NewBufferString(raw)
		} else {
			data, err := json.Marshal(body)
			require.NoError(t, err)
			rd = bytes.NewReader(data)
		}
	}
	req, err := http.NewRequest(method, s.api+path, rd)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// placeCall asks crmlink to call number for manager and returns the call id.
func placeCall(t *testing.T, s *stack, auth string, manager int64, number string) string {
	t.Helper()
	code, out := callAPI(t, s, http.MethodPost, "/v1/calls", auth, map[string]any{"manager": manager, "phone": number})
	require.Equal(t, http.StatusAccepted, code, "%v", out)
	assert.Equal(t, string(clicktocall.RingingManager), out["state"])
	return out["id"].(string)
}

// callState is GET /v1/calls/{id} with the admin token.
func callState(t *testing.T, s *stack, id string) map[string]any {
	t.Helper()
	code, out := callAPI(t, s, http.MethodGet, "/v1/calls/"+id, s.cfg.HTTP.Token, nil)
	require.Equal(t, http.StatusOK, code, "%v", out)
	return out
}

// waitState waits until the call is in the state (and, once ended, has the cause).
func waitState(t *testing.T, s *stack, id string, state clicktocall.State, cause clicktocall.Cause) {
	t.Helper()
	var last map[string]any
	testrig.WaitFor(t, callWait, "call "+id+" "+string(state)+" "+string(cause), func() bool {
		last = callState(t, s, id)
		return last["state"] == string(state) && (cause == "" || last["cause"] == string(cause))
	})
}

// Anna clicks a client's number: her phone rings, she answers, the client's line rings
// with her caller id, they talk; one call_out note credited to Anna.
func TestClickToCallManagerAnswersThenTheClient(t *testing.T) {
	s := clickToCallStack(t)
	anna := managerPhone(t, s.ast, "101")
	client := newPhone(t, "pstn", s.ast.TrunkHost, 5060)

	id := placeCall(t, s, s.cfg.HTTP.Token, annaUser, clickedNumber)
	ring := nextIncoming(t, anna, callWait)
	assert.Equal(t, "+74951000001", ring.From(), "Anna's phone shows whom she is calling")
	notRung(t, client)
	waitState(t, s, id, clicktocall.RingingManager, "")
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, ring.Answer(ctx))

	in := nextIncoming(t, client, callWait)
	assert.Equal(t, clickedDial, in.To(), "the call left through the trunk")
	assert.Equal(t, annaCallerID, in.From(), "the client sees Anna's caller id")
	waitState(t, s, id, clicktocall.RingingClient, "")
	require.NoError(t, in.Answer(ctx))
	waitState(t, s, id, clicktocall.Talking, "")
	time.Sleep(talkTime) // a talk time the outcome must show
	require.NoError(t, in.Hangup(ctx))
	waitState(t, s, id, clicktocall.Ended, clicktocall.Completed)

	o := s.nextOutcome(t)
	assert.Equal(t, routing.Outgoing, o.Direction)
	assert.Equal(t, clickedDial, o.Called)
	assert.Equal(t, crm.UserID(annaUser), o.Manager)
	assert.True(t, o.Answered)
	assert.GreaterOrEqual(t, o.TalkDuration, talkTime)
	expectCallNote(t, s, o, sandbox.NoteCallOut, annaUser)
	nextOutcomeIsDirectCall(t, s, anna) // exactly one outcome for the click
}

// Anna does not pick up: the call ends manager_no_answer at the ring timeout and the
// client's line never rings.
func TestClickToCallManagerDoesNotAnswer(t *testing.T) {
	s := clickToCallStack(t)
	anna := managerPhone(t, s.ast, "101")
	client := newPhone(t, "pstn", s.ast.TrunkHost, 5060)

	id := placeCall(t, s, s.cfg.HTTP.Token, annaUser, clickedNumber)
	nextIncoming(t, anna, callWait)
	waitState(t, s, id, clicktocall.Ended, clicktocall.ManagerNoAnswer)
	notRung(t, client)
	nextOutcomeIsDirectCall(t, s, anna) // nothing recorded for the unanswered click
}

// The client's line is busy: the call ends client_busy and amoCRM gets a "not reached"
// call_out note credited to Anna.
func TestClickToCallClientBusyLeavesANotReachedNote(t *testing.T) {
	s := clickToCallStack(t)
	anna := managerPhone(t, s.ast, "101")
	client := newPhone(t, "pstn", s.ast.TrunkHost, 5060)

	id := placeCall(t, s, s.cfg.HTTP.Token, annaUser, clickedNumber)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, nextIncoming(t, anna, callWait).Answer(ctx))
	require.NoError(t, nextIncoming(t, client, callWait).Reject(486))
	waitState(t, s, id, clicktocall.Ended, clicktocall.ClientBusy)

	o := s.nextOutcome(t)
	assert.Equal(t, routing.Outgoing, o.Direction)
	assert.False(t, o.Answered)
	expectCallNote(t, s, o, sandbox.NoteCallOut, annaUser)
	c := s.crm.Created()
	require.Len(t, c.Notes, 1)
	assert.Equal(t, 6, c.Notes[0].Params.CallStatus, "call_status 6: not reached")
}

// Requests crmlink refuses dial nothing and say why.
func TestClickToCallRefusals(t *testing.T) {
	s := clickToCallStack(t)
	anna := managerPhone(t, s.ast, "101")
	annaKey := clicktocall.Key(keySecret, annaUser)
	for _, tc := range []struct {
		name, auth string
		body       any
		code       int
		says       string
	}{
		{"no key", "", map[string]any{"manager": annaUser, "phone": clickedNumber}, 401, "Authorization"},
		{"wrong key", clicktocall.Key(keySecret+"x", annaUser), map[string]any{"manager": annaUser, "phone": clickedNumber}, 401, "wrong"},
		{"another manager's key", clicktocall.Key(keySecret, borisUser), map[string]any{"manager": annaUser, "phone": clickedNumber}, 403, "1002"},
		{"garbage", annaKey, "{{{", 400, "body must be JSON"},
		{"no manager", annaKey, map[string]any{"phone": clickedNumber}, 400, "manager"},
		{"bad number", annaKey, map[string]any{"manager": annaUser, "phone": "call me"}, 400, "not a phone number"},
		{"short number", annaKey, map[string]any{"manager": annaUser, "phone": "101"}, 400, "not a phone number"},
		{"unknown manager", s.cfg.HTTP.Token, map[string]any{"manager": 4242, "phone": clickedNumber}, 404, "4242"},
		{"manager without phones", clicktocall.Key(keySecret, danaUser), map[string]any{"manager": danaUser, "phone": clickedNumber}, 404, "1005"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := callAPI(t, s, http.MethodPost, "/v1/calls", tc.auth, tc.body)
			assert.Equal(t, tc.code, code, "%v", out)
			assert.Contains(t, out["error"], tc.says)
		})
	}
	// Prove nothing rang: a click that goes through rings Anna first.
	placeCall(t, s, annaKey, annaUser, clickedNumber)
	ring := nextIncoming(t, anna, callWait)
	assert.Equal(t, "+74951000001", ring.From())
	require.NoError(t, ring.Reject(486))
}

// A flood of clicks for Anna: one call rings her, the others are refused 409 while it is
// in progress; once it ended she can be called again.
func TestClickToCallFloodRingsTheManagerOnce(t *testing.T) {
	s := clickToCallStack(t)
	anna := managerPhone(t, s.ast, "101")
	annaKey := clicktocall.Key(keySecret, annaUser)

	const clicks = 20
	codes := make(chan int, clicks)
	ids := make(chan string, clicks)
	for range clicks {
		go func() {
			code, out := callAPI(t, s, http.MethodPost, "/v1/calls", annaKey, map[string]any{"manager": annaUser, "phone": clickedNumber})
			codes <- code
			if id, ok := out["id"].(string); ok {
				ids <- id
			}
		}()
	}
	count := map[int]int{}
	for range clicks {
		count[<-codes]++
	}
	assert.Equal(t, map[int]int{http.StatusAccepted: 1, http.StatusConflict: clicks - 1}, count)
	id := <-ids
	ring := nextIncoming(t, anna, callWait)
	select {
	case again := <-anna.Incoming():
		t.Fatalf("Anna's phone rang twice at once (from %s)", again.From())
	case <-time.After(time.Second):
	}
	require.NoError(t, ring.Reject(486))
	waitState(t, s, id, clicktocall.Ended, clicktocall.ManagerBusy)
	// Anna's own key sees her call; another manager's key does not.
	code, _ := callAPI(t, s, http.MethodGet, "/v1/calls/"+id, annaKey, nil)
	assert.Equal(t, http.StatusOK, code)
	code, _ = callAPI(t, s, http.MethodGet, "/v1/calls/"+id, clicktocall.Key(keySecret, borisUser), nil)
	assert.Equal(t, http.StatusNotFound, code)

	placeCall(t, s, annaKey, annaUser, clickedNumber)
	require.NoError(t, nextIncoming(t, anna, callWait).Reject(486))
}

// Boris has a desk phone and a softphone: both ring, the softphone answers, the desk
// phone stops ringing, and the call is one outcome credited to Boris.
func TestClickToCallRingsEveryPhoneOfTheManager(t *testing.T) {
	s := clickToCallStack(t)
	anna := managerPhone(t, s.ast, "101")
	desk := managerPhone(t, s.ast, "102")
	soft := managerPhone(t, s.ast, "103")
	client := newPhone(t, "pstn", s.ast.TrunkHost, 5060)

	id := placeCall(t, s, clicktocall.Key(keySecret, borisUser), borisUser, "8 495 100 00 02")
	inDesk := nextIncoming(t, desk, callWait)
	inSoft := nextIncoming(t, soft, callWait)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	require.NoError(t, inSoft.Answer(ctx))
	// At once, not at the ring timeout (3 s here), when Asterisk would stop it anyway.
	select {
	case <-inDesk.Done():
	case <-time.After(time.Second):
		t.Fatal("the desk phone kept ringing after the softphone answered")
	}
	assert.Equal(t, siptest.EndRemoteCancel, inDesk.EndCause(), "the desk phone got a CANCEL")
	in := nextIncoming(t, client, callWait)
	assert.Equal(t, borisClient, in.To())
	require.NoError(t, in.Answer(ctx))
	waitState(t, s, id, clicktocall.Talking, "")
	require.NoError(t, inSoft.Hangup(ctx))
	waitState(t, s, id, clicktocall.Ended, clicktocall.Completed)

	o := s.nextOutcome(t)
	assert.Equal(t, routing.Outgoing, o.Direction)
	assert.Equal(t, crm.UserID(borisUser), o.Manager)
	assert.True(t, o.Answered)
	expectCallNote(t, s, o, sandbox.NoteCallOut, borisUser)
	nextOutcomeIsDirectCall(t, s, anna) // the desk phone's leg recorded nothing
}

// Gleb's phone is not registered: nothing can ring, and the answer says so at once.
func TestClickToCallManagerOffline(t *testing.T) {
	s := clickToCallStack(t)
	client := newPhone(t, "pstn", s.ast.TrunkHost, 5060)
	code, out := callAPI(t, s, http.MethodPost, "/v1/calls", s.cfg.HTTP.Token, map[string]any{"manager": glebUser, "phone": clickedNumber})
	require.Equal(t, http.StatusAccepted, code, "%v", out)
	assert.Equal(t, string(clicktocall.Ended), out["state"])
	assert.Equal(t, string(clicktocall.ManagerUnreachable), out["cause"])
	code, out = callAPI(t, s, http.MethodPost, "/v1/calls", s.cfg.HTTP.Token, map[string]any{"manager": glebUser, "phone": clickedNumber})
	assert.Equal(t, http.StatusAccepted, code, "the ended call holds nothing: %v", out)
	notRung(t, client)
}
