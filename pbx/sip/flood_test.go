package sip

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/routing"
)

// floodInvite is one INVITE of a flood: its own Call-ID and branch, so each would be a
// new transaction; about 300 bytes, like the issue's.
func floodInvite(i int, from, to string) []byte {
	return []byte(fmt.Sprintf("INVITE sip:200@%[2]s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %[1]s;branch=z9hG4bK-flood-%[3]d;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:79161234567@%[1]s>;tag=f%[3]d\r\n"+
		"To: <sip:200@%[2]s>\r\n"+
		"Call-ID: flood-%[3]d@crmlink.test\r\n"+
		"CSeq: 1 INVITE\r\n"+
		"Contact: <sip:79161234567@%[1]s>\r\n"+
		"Content-Length: 0\r\n\r\n", from, to, i))
}

func options(from, to string) []byte {
	return []byte(fmt.Sprintf("OPTIONS sip:%[2]s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %[1]s;branch=z9hG4bK-marker;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:probe@%[1]s>;tag=m1\r\n"+
		"To: <sip:%[2]s>\r\n"+
		"Call-ID: marker@crmlink.test\r\n"+
		"CSeq: 1 OPTIONS\r\n"+
		"Content-Length: 0\r\n\r\n", from, to))
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Issue 11: INVITEs from outside the allowed networks were answered with a full 403
// transaction, retransmitted 11 times (a reflection amplifier), each kept in memory and
// logged. Now a flood from a non-allowed source (127.0.0.3; the allowed network is
// 127.0.0.2/32) gets no datagram back, leaves one log line and no state, and the allowed
// PBX is still answered.
func TestInviteFloodFromOtherNetworksIsDropped(t *testing.T) {
	d, calls := recordingDecider(routing.Decision{Result: routing.Routed, Targets: []routing.Target{{Endpoint: "PJSIP/101"}}})
	tr := startRedirect(t, d, WithAllowedNetworks(netip.MustParsePrefix("127.0.0.2/32")))
	to := tr.addr

	flood, err := net.ListenPacket("udp", "127.0.0.3:0")
	require.NoError(t, err)
	defer flood.Close()
	pbx, err := net.ListenPacket("udp", "127.0.0.2:0")
	require.NoError(t, err)
	defer pbx.Close()
	dst, err := net.ResolveUDPAddr("udp", to)
	require.NoError(t, err)

	before := heapInUse()
	const want = 20000
	sent, bytesIn := 0, 0
	deadline := time.Now().Add(3 * time.Second) // bounded in time on a slow machine
	for ; sent < want && time.Now().Before(deadline); sent++ {
		msg := floodInvite(sent, flood.LocalAddr().String(), to)
		_, err := flood.WriteTo(msg, dst)
		require.NoError(t, err)
		bytesIn += len(msg)
	}
	t.Logf("sent %d INVITEs (%d bytes) from 127.0.0.3", sent, bytesIn)

	// The server reads datagrams in order on one socket: once the allowed PBX's OPTIONS is
	// answered, every INVITE before it has been read. Like a real UA over UDP the PBX
	// retransmits every T1 (500 ms): while the flood fills the socket's receive buffer the
	// kernel drops datagrams, the PBX's included.
	buf := make([]byte, 4096)
	var n int
	answered := time.Now().Add(10 * time.Second)
	for {
		_, err = pbx.WriteTo(options(pbx.LocalAddr().String(), to), dst)
		require.NoError(t, err)
		require.NoError(t, pbx.SetReadDeadline(time.Now().Add(500*time.Millisecond)))
		n, _, err = pbx.ReadFrom(buf)
		if err == nil || time.Now().After(answered) {
			break
		}
	}
	require.NoError(t, err, "the allowed PBX is answered during the flood")
	assert.True(t, strings.HasPrefix(string(buf[:n]), "SIP/2.0 200 OK"), string(buf[:n]))

	// Nothing comes back to the flooding address, not even after the first retransmission
	// interval (T1, 500 ms) of a 403 transaction.
	replies, bytesOut := 0, 0
	require.NoError(t, flood.SetReadDeadline(time.Now().Add(700*time.Millisecond)))
	for {
		n, _, err := flood.ReadFrom(buf)
		if err != nil {
			break
		}
		replies++
		bytesOut += n
	}
	assert.Zero(t, replies, "datagrams answered to the flood (%d bytes)", bytesOut)
	assert.Empty(t, calls, "decider not asked")

	grown := int64(heapInUse()) - int64(before)
	assert.Less(t, grown, int64(4<<20), "heap grew by %d bytes: state kept per dropped INVITE", grown)

	logs := tr.logs.String()
	assert.Equal(t, 1, strings.Count(logs, "outside sip_redirect.allowed_networks"), "one warning per interval")
	assert.Less(t, strings.Count(logs, "\n"), 10, "the flood does not flood the log:\n%s", logs)
}

// Over TCP a connection from outside is closed before anything is read.
func TestTCPFromOtherNetworksIsClosed(t *testing.T) {
	d, calls := recordingDecider(routing.Decision{Result: routing.Routed, Targets: []routing.Target{{Endpoint: "PJSIP/101"}}})
	srv, err := NewRedirectServer(d, WithAllowedNetworks(netip.MustParsePrefix("127.0.0.2/32")))
	require.NoError(t, err)
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTCP(ctx, ln) }()
	defer func() { cancel(); assert.NoError(t, <-errc) }()

	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	c, err := dialer.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, _ = c.Write(floodInvite(1, c.LocalAddr().String(), ln.Addr().String()))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	n, err := c.Read(make([]byte, 1024))
	assert.Zero(t, n)
	assert.True(t, err == io.EOF || isReset(err), "closed by crmlink: %v", err)
	assert.Empty(t, calls)
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}
