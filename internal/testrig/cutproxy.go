package testrig

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// CutProxy is a TCP proxy to a server (Redis) that a test cuts the way a network
// partition does: from Cut on, what the client sends goes nowhere and nothing comes back
// (commands time out; they may or may not have reached the server) until Heal.
type CutProxy struct {
	ln net.Listener

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

// NewCutProxy listens on a free loopback port, forwarding to target, until the test ends.
func NewCutProxy(t testing.TB, target string) *CutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &CutProxy{ln: ln}
	t.Cleanup(func() {
		_ = ln.Close()
		p.closeAll()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			cut := p.cut
			p.mu.Unlock()
			if cut {
				continue // held open, never answered
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	return p
}

// Addr is the proxy's address, for the client.
func (p *CutProxy) Addr() string { return p.ln.Addr().String() }

func (p *CutProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// Cut drops every connection and holds new ones unanswered.
func (p *CutProxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
	p.closeAll()
}

// Heal lets new connections through again (the held ones are closed).
func (p *CutProxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
	p.closeAll()
}
