// Package compose brings docker/compose.yaml up (Asterisk 22, Redis, the amoCRM sandbox and
// crmlink, all from the images docker/images.sh builds), places one routed call through
// it with the test phone, checks that the manager's phone rang and the call was bridged,
// and takes the stack down. It runs where `docker info` answers and is skipped elsewhere;
// CRMLINK_COMPOSE_TEST=required (make compose-test) turns the skip into a failure.
//
// The stack listens on ports of its own (the rig's plus 200), so it runs beside the rig.
// The call itself is placed under the rig lock: the stack's dialplan sends a call it does
// not route to the operator desk at 127.0.0.1:5170, the same fixed address as the rig's.
package compose

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
)

// The stack's addresses (docker/compose.yaml).
const (
	project   = "crmlink-compose-test"
	ariURL    = "http://127.0.0.1:8288/ari"
	sipServer = "127.0.0.1:5260"
	crmlink   = "http://127.0.0.1:8280"
	sandbox   = "http://127.0.0.1:8299"
)

// The call: Irina Sokolova, whose personal manager is Anna (PJSIP/101), in demo/seed.yaml.
const (
	clientNumber = "84951000001"
	annaExt      = "101"
	annaUser     = "1001"
)

func ariGet(path string, out any) int {
	req, _ := http.NewRequest(http.MethodGet, ariURL+path, nil)
	req.SetBasicAuth("crmlink", "crmlink")
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func TestComposeStackRoutesACall(t *testing.T) {
	compose := testrig.Docker(t, "CRMLINK_COMPOSE_TEST")
	root := testrig.RepoRoot(t)
	// One Compose test at a time on a host: fixed ports and project name.
	defer testrig.Flock(t, "/tmp/crmlink-compose-test.lock")()

	start := time.Now()
	out, err := testrig.Exec(t, root, 8*time.Minute, filepath.Join(root, "docker", "images.sh"))
	require.NoError(t, err, "docker/images.sh:\n%s", out)
	t.Logf("images ready in %s:\n%s", time.Since(start).Round(time.Second), out)

	file := filepath.Join(root, "docker", "compose.yaml")
	dc := func(timeout time.Duration, args ...string) (string, error) {
		full := append(append(compose[1:], "-p", project, "-f", file), args...)
		return testrig.Exec(t, root, timeout, compose[0], full...)
	}
	_, _ = dc(2*time.Minute, "down", "-v", "--remove-orphans") // a stack a killed run left
	start = time.Now()
	out, err = dc(3*time.Minute, "up", "-d")
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := dc(time.Minute, "logs", "--no-color", "--tail", "40")
			t.Logf("the stack's logs:\n%s", logs)
		}
		stopped := time.Now()
		out, err := dc(2*time.Minute, "down", "-v", "--remove-orphans")
		assert.NoError(t, err, "compose down:\n%s", out)
		t.Logf("stack down in %s", time.Since(stopped).Round(100*time.Millisecond))
	})
	require.NoError(t, err, "compose up:\n%s", out)

	testrig.WaitFor(t, 90*time.Second, "crmlink's /healthz (ARI and Redis connected)", func() bool {
		resp, err := http.Get(crmlink + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	testrig.WaitFor(t, 10*time.Second, "the Stasis application crmlink registered", func() bool { return ariGet("/applications/crmlink", nil) == http.StatusOK })
	resp, err := http.Get(sandbox + "/_sandbox/state")
	require.NoError(t, err, "the amoCRM sandbox answers")
	resp.Body.Close()
	t.Logf("stack up in %s", time.Since(start).Round(100*time.Millisecond))

	lock := os.Getenv("CRMLINK_RIG_LOCK")
	if lock == "" {
		lock = "/tmp/crmlink-rig.lock"
	}
	unlock := testrig.Flock(t, lock)
	defer unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	anna, err := siptest.NewPhone(ctx, siptest.PhoneOptions{User: annaExt})
	require.NoError(t, err)
	defer anna.Close()
	res, err := anna.Register(ctx, "sip:"+sipServer, 2*time.Minute)
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode, "REGISTER 101")
	defer func() {
		uctx, ucancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer ucancel()
		_, _ = anna.Unregister(uctx, "sip:"+sipServer)
	}()
	testrig.WaitFor(t, 5*time.Second, "PJSIP/101 online", func() bool {
		var ep struct {
			State string `json:"state"`
		}
		return ariGet("/endpoints/PJSIP/"+annaExt, &ep) == http.StatusOK && ep.State == "online"
	})

	caller, err := siptest.NewPhone(ctx, siptest.PhoneOptions{User: clientNumber, BindHost: "127.0.0.2"})
	require.NoError(t, err)
	defer caller.Close()
	call, err := caller.Call(ctx, "sip:200@"+sipServer)
	require.NoError(t, err)

	var in *siptest.IncomingCall
	select {
	case in = <-anna.Incoming():
	case <-time.After(10 * time.Second):
		t.Fatal("Anna's phone (101) did not ring: the call was not routed to the client's personal manager")
	}
	require.NoError(t, in.Ringing())
	assert.Equal(t, clientNumber, in.From(), "the manager sees the client's number")
	require.NoError(t, in.Answer(ctx))
	ans, err := call.WaitAnswer(ctx)
	require.NoError(t, err)
	require.Equal(t, 200, ans.StatusCode, "the client is connected to Anna")

	vars := map[string]string{}
	for _, name := range []string{"CRMLINK_RESULT", "CRMLINK_OWNER"} {
		vars[name] = callerVar(t, clientNumber, name)
	}
	assert.Equal(t, map[string]string{"CRMLINK_RESULT": "ROUTED", "CRMLINK_OWNER": annaUser}, vars)

	require.NoError(t, call.Hangup(ctx))
	select {
	case <-in.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Anna's side was not hung up after the client hung up")
	}
}

// callerVar reads a variable of the incoming channel with the caller number.
func callerVar(t *testing.T, number, name string) string {
	t.Helper()
	var chans []struct {
		ID     string `json:"id"`
		Caller struct {
			Number string `json:"number"`
		} `json:"caller"`
	}
	require.Equal(t, http.StatusOK, ariGet("/channels", &chans))
	for _, ch := range chans {
		if ch.Caller.Number == number && !strings.HasPrefix(ch.ID, "crmlink-leg-") {
			var v struct {
				Value string `json:"value"`
			}
			ariGet(fmt.Sprintf("/channels/%s/variable?variable=%s", ch.ID, name), &v)
			return v.Value
		}
	}
	t.Fatalf("no channel with caller %s", number)
	return ""
}
