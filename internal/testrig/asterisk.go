package testrig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// AsteriskRig is the rig's Asterisk 22 as configured by asterisk-conf/.
type AsteriskRig struct {
	ARIURL   string // http://127.0.0.1:8088/ari
	WSURL    string // ws://127.0.0.1:8088/ari/events
	User     string
	Password string
	// SIPHost and SIPPort are the PJSIP UDP transport.
	SIPHost string
	SIPPort int
	// TrunkHost is the source address the trunk endpoint is identified by.
	TrunkHost string
}

// Asterisk returns the rig's Asterisk after checking that ARI answers. When it does not,
// the test fails if CRMLINK_TEST_RIG=required (as in `make test`) and is skipped otherwise.
func Asterisk(t testing.TB) AsteriskRig {
	t.Helper()
	base := os.Getenv("CRMLINK_TEST_ARI")
	if base == "" {
		base = "http://127.0.0.1:8088/ari"
	}
	r := AsteriskRig{
		ARIURL:    base,
		WSURL:     "ws" + strings.TrimPrefix(base, "http") + "/events",
		User:      "crmlink",
		Password:  "crmlink",
		SIPHost:   "127.0.0.1",
		SIPPort:   5060,
		TrunkHost: "127.0.0.2",
	}
	if _, err := r.get(context.Background(), "/asterisk/ping"); err != nil {
		if os.Getenv("CRMLINK_TEST_RIG") == "required" {
			t.Fatalf("testrig: Asterisk does not answer on %s (make sandbox-up): %v", base, err)
		}
		t.Skipf("testrig: Asterisk not running on %s; `make sandbox-up` or `make test` runs this test", base)
	}
	return r
}

var errNotFound = errors.New("not found")

// get makes an ARI GET and returns the body; 404 is an error of its own.
func (r AsteriskRig) get(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.ARIURL+path, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(r.User, r.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode == http.StatusNotFound {
		return body, fmt.Errorf("ARI GET %s: %w", path, errNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("ARI GET %s: status %d", path, resp.StatusCode)
	}
	return body, nil
}

// AppRegistered reports whether a Stasis application is connected.
func (r AsteriskRig) AppRegistered(app string) bool {
	_, err := r.get(context.Background(), "/applications/"+app)
	return err == nil
}

// EndpointState is "online", "offline" or "unknown" for PJSIP/<resource>.
func (r AsteriskRig) EndpointState(resource string) string {
	body, err := r.get(context.Background(), "/endpoints/PJSIP/"+resource)
	if err != nil {
		return "error: " + err.Error()
	}
	var ep struct {
		State string `json:"state"`
	}
	_ = json.Unmarshal(body, &ep)
	return ep.State
}

// WaitFor polls cond every 10 ms until it holds or the timeout passes; for states that
// Asterisk exposes only by polling (application registered, endpoint online).
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("testrig: timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CallerChannelVar reads a variable of the channel whose caller number is callerNum (the
// incoming leg of a test call); "" with an error when there is no such channel.
func (r AsteriskRig) CallerChannelVar(callerNum, name string) (string, error) {
	body, err := r.get(context.Background(), "/channels")
	if err != nil {
		return "", err
	}
	var chans []struct {
		ID     string `json:"id"`
		Caller struct {
			Number string `json:"number"`
		} `json:"caller"`
	}
	if err := json.Unmarshal(body, &chans); err != nil {
		return "", err
	}
	for _, ch := range chans {
		if ch.Caller.Number != callerNum || strings.HasPrefix(ch.ID, "crmlink-leg-") {
			continue
		}
		body, err := r.get(context.Background(), "/channels/"+ch.ID+"/variable?variable="+url.QueryEscape(name))
		if errors.Is(err, errNotFound) {
			return "", nil // an unset variable
		}
		if err != nil {
			return "", err
		}
		var v struct {
			Value string `json:"value"`
		}
		_ = json.Unmarshal(body, &v)
		return v.Value, nil
	}
	return "", fmt.Errorf("no channel with caller %s", callerNum)
}

// Post makes an ARI POST (query parameters in path) and fails the test on an error.
func (r AsteriskRig) Post(t testing.TB, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.ARIURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(r.User, r.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("ARI POST %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("ARI POST %s: status %d", path, resp.StatusCode)
	}
}

// BridgeExists reports whether ARI knows a bridge.
func (r AsteriskRig) BridgeExists(id string) bool {
	_, err := r.get(context.Background(), "/bridges/"+id)
	return err == nil
}

// TwoPartyBridges is how many bridges Asterisk has with two channels in them: calls
// whose parties talk (a Dial() bridges them once both are up).
func (r AsteriskRig) TwoPartyBridges() int {
	b, err := r.get(context.Background(), "/bridges")
	if err != nil {
		return 0
	}
	var bridges []struct {
		Channels []string `json:"channels"`
	}
	if json.Unmarshal(b, &bridges) != nil {
		return 0
	}
	n := 0
	for _, br := range bridges {
		if len(br.Channels) == 2 {
			n++
		}
	}
	return n
}
