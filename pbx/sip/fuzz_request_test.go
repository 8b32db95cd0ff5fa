package sip

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/crmlink/crmlink/routing"
)

// FuzzRequest: whatever datagram reaches the redirect server, it keeps answering: an
// OPTIONS sent after it still gets its 200 (a panic in a handler would end the process).
func FuzzRequest(f *testing.F) {
	f.Add([]byte("INVITE sip:200@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-1\r\nFrom: <sip:79161234567@127.0.0.1>;tag=a\r\nTo: <sip:200@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("INVITE sip:200@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999\r\nFrom: <sip:@>\r\nTo: x\r\nCall-ID:\r\nCSeq: -1 INVITE\r\nContent-Length: 99999\r\n\r\n"))
	f.Add([]byte("BYE sip:x SIP/2.0\r\n\r\n"))
	f.Add([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-2\r\nCSeq: 1 INVITE\r\n\r\n"))
	f.Add([]byte{0, 0xff, '\r', '\n'})
	decider := routing.DeciderFunc(func(context.Context, routing.Call) routing.Decision {
		return routing.Decision{Result: routing.Routed, Owner: 7, Source: "crm", Targets: []routing.Target{{Endpoint: "PJSIP/101"}}}
	})
	tr := startRedirect(f, decider, WithFallbackContact("sip:fallback-{reason}-{owner}-{source}@127.0.0.1:5060"))
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { conn.Close() })
	server, err := net.ResolveUDPAddr("udp", tr.addr)
	if err != nil {
		f.Fatal(err)
	}
	probes := 0
	f.Fuzz(func(t *testing.T, datagram []byte) {
		if _, err := conn.WriteTo(datagram, server); err != nil {
			t.Skip("not sendable as one datagram")
		}
		probes++
		callID := fmt.Sprintf("probe-%d", probes)
		probe := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\n"+
			"To: <sip:%s>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			tr.addr, conn.LocalAddr(), callID, tr.addr, callID)
		if _, err := conn.WriteTo([]byte(probe), server); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65535)
		deadline := time.Now().Add(5 * time.Second)
		for {
			_ = conn.SetReadDeadline(deadline)
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				t.Fatalf("no answer to an OPTIONS after the datagram %q: %v", datagram, err)
			}
			if msg := string(buf[:n]); strings.Contains(msg, callID+"\r\n") {
				if !strings.HasPrefix(msg, "SIP/2.0 200") {
					t.Fatalf("OPTIONS after %q answered %q", datagram, msg)
				}
				return
			}
		}
	})
}
