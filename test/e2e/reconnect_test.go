package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
)

// netCut is a TCP relay between crmlink and Asterisk's ARI websocket that the test can
// stall and cut, as a flaky network or a restarted proxy would.
type netCut struct {
	l      net.Listener
	target string

	mu     sync.Mutex
	conns  []net.Conn
	stalls bool
}

func newNetCut(t *testing.T, target string) *netCut {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := &netCut{l: l, target: target}
	t.Cleanup(func() { l.Close(); n.cut() })
	go n.accept()
	return n
}

func (n *netCut) addr() string { return n.l.Addr().String() }

func (n *netCut) accept() {
	for {
		c, err := n.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", n.target)
		if err != nil {
			c.Close()
			continue
		}
		n.mu.Lock()
		n.conns = append(n.conns, c, up)
		n.mu.Unlock()
		go func() { _, _ = io.Copy(up, c) }()
		go n.down(c, up)
	}
}

// down relays Asterisk -> crmlink unless stalled; stalled bytes are never delivered.
func (n *netCut) down(c, up net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		k, err := up.Read(buf)
		if err != nil {
			c.Close()
			return
		}
		n.mu.Lock()
		stalled := n.stalls
		n.mu.Unlock()
		if stalled {
			continue
		}
		if _, err := c.Write(buf[:k]); err != nil {
			return
		}
	}
}

// stall stops delivering Asterisk's events to crmlink; they are lost.
func (n *netCut) stall() { n.mu.Lock(); n.stalls = true; n.mu.Unlock() }

// cut closes every relayed connection and lets new ones through again.
func (n *netCut) cut() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		c.Close()
	}
	n.conns = nil
	n.stalls = false
}

// A StasisStart lost with a dropped websocket: Asterisk does not send it again, so crmlink
// must find the call waiting in its application after reconnecting and route it.
func TestARIReconnectsAndPicksUpCallsAlreadyInTheApp(t *testing.T) {
	ast := testrig.Asterisk(t)
	relay := newNetCut(t, strings.TrimPrefix(strings.TrimSuffix(ast.ARIURL, "/ari"), "http://"))
	s := startStack(t, func(c *config.Config) {
		c.Asterisk.ARI.WSURL = "ws://" + relay.addr() + "/ari/events"
	})
	anna := managerPhone(t, s.ast, "101")

	relay.stall()
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), ariExten)
	testrig.WaitFor(t, callWait, "the call waiting in Stasis(crmlink)", func() bool {
		return channelInApp(t, ast, annaClient)
	})
	require.Zero(t, s.app.ARI.ActiveCalls(), "the StasisStart was lost with the stalled websocket")
	relay.cut()

	in := nextIncoming(t, anna, 10*time.Second)
	answerAndCheckBridged(t, s, in, call, annaClient, annaUser, "crm")
}

func channelInApp(t *testing.T, ast testrig.AsteriskRig, caller string) bool {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, ast.ARIURL+"/channels", nil)
	req.SetBasicAuth(ast.User, ast.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var chans []struct {
		Caller   struct{ Number string } `json:"caller"`
		Dialplan struct {
			AppName string `json:"app_name"`
		} `json:"dialplan"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&chans)
	for _, c := range chans {
		if c.Caller.Number == caller && c.Dialplan.AppName == "Stasis" {
			return true
		}
	}
	return false
}

// A bridge left by a crmlink that stopped mid-call is cleaned up by the next one.
func TestARISweepsBridgesLeftByAStoppedInstance(t *testing.T) {
	ast := testrig.Asterisk(t)
	ast.Post(t, "/bridges?type=mixing&bridgeId=crmlink-br-leftover")
	t.Cleanup(func() {
		if ast.BridgeExists("crmlink-br-leftover") {
			req, _ := http.NewRequest(http.MethodDelete, ast.ARIURL+"/bridges/crmlink-br-leftover", nil)
			req.SetBasicAuth(ast.User, ast.Password)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})
	startStack(t)
	testrig.WaitFor(t, 10*time.Second, "the leftover bridge removed", func() bool { return !ast.BridgeExists("crmlink-br-leftover") })
}
