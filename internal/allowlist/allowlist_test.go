package allowlist

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAdmits(t *testing.T) {
	pbx := Networks{netip.MustParsePrefix("10.0.0.0/24")}
	for _, c := range []struct {
		name  string
		nets  Networks
		addr  net.Addr
		admit bool
	}{
		{"in the network", pbx, &net.UDPAddr{IP: net.ParseIP("10.0.0.5"), Port: 5060}, true},
		{"outside it", pbx, &net.UDPAddr{IP: net.ParseIP("10.0.1.5"), Port: 5060}, false},
		{"IPv4-mapped IPv6", pbx, &net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.7"), Port: 4573}, true},
		{"loopback by default", OrLoopback(nil), &net.TCPAddr{IP: net.ParseIP("127.0.0.3"), Port: 4573}, true},
		{"IPv6 loopback by default", OrLoopback(nil), &net.TCPAddr{IP: net.ParseIP("::1"), Port: 4573}, true},
		{"configured list replaces loopback", OrLoopback(pbx), &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 4573}, false},
		{"unparsable address", pbx, &net.UnixAddr{Name: "/run/x", Net: "unix"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.admit, c.nets.Admits(c.addr))
		})
	}
}
