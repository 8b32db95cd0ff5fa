// Package allowlist decides whether a peer may talk to a listener that has no password of
// its own to check (the SIP redirect server, FastAGI): by the networks its source address
// is in. One place, so both front ends admit and default the same way.
package allowlist

import (
	"net"
	"net/netip"
)

// Networks are the prefixes a listener admits.
type Networks []netip.Prefix

// Loopback is what a listener admits when nothing is configured.
func Loopback() Networks {
	return Networks{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// OrLoopback is prefixes, or Loopback when there are none.
func OrLoopback(prefixes []netip.Prefix) Networks {
	if len(prefixes) == 0 {
		return Loopback()
	}
	return Networks(prefixes)
}

// Admits reports whether addr (a peer's "host:port", IPv4-mapped IPv6 included) is in one
// of the networks. An address that does not parse is not admitted.
func (n Networks) Admits(addr net.Addr) bool {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range n {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
