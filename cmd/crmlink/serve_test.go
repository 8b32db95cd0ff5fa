package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/testrig"
)

// TestMain lets a test start this package's binary as a real process (signals, exit
// code): with CRMLINK_TEST_EXEC set, the test binary is `crmlink` with those arguments.
func TestMain(m *testing.M) {
	if os.Getenv("CRMLINK_TEST_EXEC") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer = testrig.LogBuffer

// server is `crmlink serve` running as a process of its own.
type server struct {
	cmd  *exec.Cmd
	log  *lockedBuffer
	api  string
	done chan error
}

// serveReadToken lets the tests ask GET /v1/route.
const serveReadToken = "serve-read-token"

// serveConfig is a configuration without ARI (no Asterisk needed) against an amoCRM
// sandbox, so the event queue and the rules engine run too.
func serveConfig(httpAddr, dataDir, crmURL, endpoint, extra string) string {
	return fmt.Sprintf(`log: {level: info, format: json}
http: {listen: %q, read_token: %s}
data_dir: %q
asterisk:
  ari: {enabled: false}
amocrm: {base_url: %q, token: tok}
managers:
  - crm_user: 7
    name: Anna
    endpoints: [%s]
%s`, httpAddr, serveReadToken, dataDir, crmURL, endpoint, extra)
}

func startServe(t *testing.T, configFile, api string) *server {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--config", configFile)
	cmd.Env = append(os.Environ(), "CRMLINK_TEST_EXEC=1")
	s := &server{cmd: cmd, log: &lockedBuffer{}, api: api, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	require.NoError(t, cmd.Start())
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("crmlink's log:\n%s", s.log.String())
		}
	})
	waitUntil(t, 10*time.Second, "crmlink answers /healthz", func() bool {
		resp, err := http.Get(api + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func crmSandbox(t *testing.T) string {
	t.Helper()
	crm := sandbox.New(sandbox.Seed{
		Token:    "tok",
		Users:    []sandbox.User{{ID: 7, Name: "Anna"}},
		Contacts: []sandbox.Contact{{ID: 1, Name: "Client", ResponsibleUserID: 7, Phones: []string{"+7 495 123-45-67"}}},
	})
	srv := httptest.NewServer(crm)
	t.Cleanup(srv.Close)
	t.Cleanup(crm.Close)
	return srv.URL
}

// routeTargets asks GET /v1/route which phones a call from the sandbox's client rings.
func routeTargets(t *testing.T, api string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, api+"/v1/route?number=84951234567", nil)
	req.Header.Set("Authorization", "Bearer "+serveReadToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var d struct {
		Result  string `json:"result"`
		Reason  string `json:"reason"`
		Targets []struct {
			Endpoint string `json:"endpoint"`
		} `json:"targets"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
	if d.Result != "ROUTED" {
		return d.Result + " " + d.Reason
	}
	var eps []string
	for _, e := range d.Targets {
		eps = append(eps, e.Endpoint)
	}
	return strings.Join(eps, ",")
}

func (s *server) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(sig))
}

// stop sends SIGTERM and expects a clean exit within the time systemd is given.
func (s *server) stop(t *testing.T) {
	t.Helper()
	start := time.Now()
	s.signal(t, syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		require.NoError(t, err, "exit status 0 after SIGTERM")
	case <-time.After(10 * time.Second):
		t.Fatal("crmlink did not exit within 10 s of SIGTERM")
	}
	assert.Less(t, time.Since(start), 5*time.Second, "nothing in progress: the stop is quick")
	assert.NotNil(t, s.logged("crmlink stopped"), "the last line says it stopped")
}

// logged returns the first JSON log line with the message, or nil.
func (s *server) logged(message string) map[string]any {
	for _, line := range strings.Split(s.log.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["message"] == message {
			return m
		}
	}
	return nil
}

func TestServeStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	cfg := filepath.Join(dir, "crmlink.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(serveConfig(httpAddr, dir, crmSandbox(t), "PJSIP/101", "")), 0o600))
	s := startServe(t, cfg, "http://"+httpAddr)
	assert.Equal(t, "PJSIP/101", routeTargets(t, s.api))
	s.stop(t)
	assert.Contains(t, s.log.String(), "stopping: calls in progress are finished first")
}

func TestServeReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	httpAddr, crmURL := freeAddr(t), crmSandbox(t)
	cfg := filepath.Join(dir, "crmlink.yaml")
	write := func(s string) { require.NoError(t, os.WriteFile(cfg, []byte(s), 0o600)) }
	write(serveConfig(httpAddr, dir, crmURL, "PJSIP/101", ""))
	s := startServe(t, cfg, "http://"+httpAddr)
	require.Equal(t, "PJSIP/101", routeTargets(t, s.api))

	// A manager's phones and the scenarios change: applied without a restart.
	write(serveConfig(httpAddr, dir, crmURL, "PJSIP/201, PJSIP/202", "scenarios:\n  missed:\n    deadline: 2h\n"))
	s.signal(t, syscall.SIGHUP)
	waitUntil(t, 5*time.Second, "the reloaded managers route the call", func() bool {
		return routeTargets(t, s.api) == "PJSIP/201,PJSIP/202"
	})
	waitUntil(t, 5*time.Second, "the reload is logged", func() bool { return s.logged("configuration reloaded") != nil })
	assert.Equal(t, []any{"managers", "scenarios.missed.deadline"}, s.logged("configuration reloaded")["applied"])

	// A file with a typo changes nothing and does not stop crmlink.
	write(serveConfig(httpAddr, dir, crmURL, "PJSIP/301", "routing:\n  lookup_timout: 1s\n"))
	s.signal(t, syscall.SIGHUP)
	waitUntil(t, 5*time.Second, "the refusal is logged", func() bool {
		return strings.Contains(s.log.String(), "configuration NOT reloaded")
	})
	assert.Contains(t, s.log.String(), `unknown key \"lookup_timout\"`)
	assert.Equal(t, "PJSIP/201,PJSIP/202", routeTargets(t, s.api), "still the last good configuration")

	// A listener change needs a restart: said so, the running listener stays.
	write(strings.Replace(serveConfig(httpAddr, dir, crmURL, "PJSIP/201, PJSIP/202", "scenarios:\n  missed:\n    deadline: 2h\n"),
		httpAddr, "127.0.0.1:1", 1))
	s.signal(t, syscall.SIGHUP)
	const restart = "reload: these changes need a restart (systemctl restart crmlink); the running values are kept"
	waitUntil(t, 5*time.Second, "the restart notice is logged", func() bool { return s.logged(restart) != nil })
	assert.Equal(t, []any{"http.listen"}, s.logged(restart)["keys"])
	assert.Equal(t, "PJSIP/201,PJSIP/202", routeTargets(t, s.api))

	s.stop(t)
}
