package agi

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/pbx/dialplan"
	"github.com/crmlink/crmlink/routing"
)

// dialAGIFrom is dialAGI from a chosen loopback address (any of 127.0.0.0/8 can be bound),
// standing in for a host on another network.
func dialAGIFrom(t *testing.T, from, addr string) *fakeAsterisk {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	return &fakeAsterisk{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// A connection from outside agi.allowed_networks is closed before anything is read or
// answered, the decider is never asked, and a hundred of them leave one log line.
func TestConnectionsFromOtherNetworksAreClosed(t *testing.T) {
	d, calls := recordingDecider(routing.Decision{Result: routing.Routed, Owner: 7, Targets: []routing.Target{{Endpoint: "PJSIP/101"}}})
	ts := startServer(t, d, WithAllowedNetworks(netip.MustParsePrefix("127.0.0.2/32")))

	for range 100 {
		a := dialAGIFrom(t, "127.0.0.3", ts.addr)
		a.send(asteriskEnv("route", nil))
		a.assertClosed()
		a.conn.Close()
	}
	assert.Empty(t, calls, "decider not asked")

	allowed := dialAGIFrom(t, "127.0.0.2", ts.addr)
	allowed.send(asteriskEnv("route", nil))
	assert.Equal(t, "ROUTED", varsMap(allowed.answerAll(false))[dialplan.VarResult], "the allowed network is served")

	require.NoError(t, ts.stop(t))
	logs := ts.logs.String()
	assert.Equal(t, 1, strings.Count(logs, "outside agi.allowed_networks"), logs)
	assert.Contains(t, logs, `"remote":"127.0.0.3:`)
}

func TestLoopbackIsTheDefaultAllowlist(t *testing.T) {
	s := NewServer(routing.DeciderFunc(nil))
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, []netip.Prefix(s.allowed))
}
