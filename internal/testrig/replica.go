package testrig

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisPair is a Redis master with one replica, both the test's own, the replica fed
// through a link the test can hold: what the master writes meanwhile does not reach the
// replica, as when a master dies before its last writes were copied. Failover then kills
// the master and promotes the replica, the way Sentinel does.
type RedisPair struct {
	Master, Replica string

	t          testing.TB
	stopMaster func()
	link       *heldLink
}

// NewRedisPair starts the pair and waits until the replica is in sync.
func NewRedisPair(t testing.TB) *RedisPair {
	t.Helper()
	master, stop, err := startRedisServer("--repl-diskless-sync-delay", "0")
	if err != nil {
		t.Fatalf("testrig: no Redis master for the test (install redis-server): %v", err)
	}
	t.Cleanup(stop)
	link, err := newHeldLink(master)
	if err != nil {
		t.Fatalf("testrig: replication link: %v", err)
	}
	t.Cleanup(link.close)
	host, port, _ := net.SplitHostPort(link.addr)
	replica, stopReplica, err := startRedisServer("--replicaof", host, port)
	if err != nil {
		t.Fatalf("testrig: no Redis replica for the test: %v", err)
	}
	t.Cleanup(stopReplica)
	p := &RedisPair{Master: master, Replica: replica, t: t, stopMaster: stop, link: link}
	m := redis.NewClient(&redis.Options{Addr: master})
	defer m.Close()
	ctx := context.Background()
	WaitFor(t, 10*time.Second, "the replica in sync", func() bool {
		// The master counts the replica's confirmations: a write it confirms.
		if err := m.Set(ctx, "testrig:pair:probe", "1", 0).Err(); err != nil {
			return false
		}
		n, _ := m.Do(ctx, "WAIT", 1, 100).Int()
		return n == 1
	})
	return p
}

// Hold stops copying the master's writes to the replica; the link stays up, so the master
// sees a connected replica that confirms nothing new.
func (p *RedisPair) Hold() { p.link.hold() }

// Failover kills the master, drops what the held link did not pass on, and makes the
// replica a master (REPLICAOF NO ONE). It returns the new master's address.
func (p *RedisPair) Failover() string {
	p.t.Helper()
	p.stopMaster()
	p.link.close()
	rep := redis.NewClient(&redis.Options{Addr: p.Replica})
	defer rep.Close()
	if err := rep.Do(context.Background(), "REPLICAOF", "NO", "ONE").Err(); err != nil {
		p.t.Fatalf("testrig: promote the replica: %v", err)
	}
	return p.Replica
}

// heldLink is a TCP proxy to a server whose server-to-client direction can be held
// (dropped).
type heldLink struct {
	addr string
	ln   net.Listener

	mu    sync.Mutex
	held  bool
	conns []net.Conn
}

func newHeldLink(master string) (*heldLink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &heldLink{addr: ln.Addr().String(), ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m, err := net.Dial("tcp", master)
			if err != nil {
				_ = c.Close()
				continue
			}
			l.mu.Lock()
			l.conns = append(l.conns, c, m)
			l.mu.Unlock()
			go l.pipe(c, m, false)
			go l.pipe(m, c, true)
		}
	}()
	return l, nil
}

// pipe copies from src to dst; fromMaster (server) bytes are dropped while the link is
// held (the replica never gets them: the master dies before sending them).
func (l *heldLink) pipe(dst, src net.Conn, fromMaster bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			l.mu.Lock()
			drop := fromMaster && l.held
			l.mu.Unlock()
			if !drop {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				_ = dst.Close()
			}
			return
		}
	}
}

func (l *heldLink) hold() {
	l.mu.Lock()
	l.held = true
	l.mu.Unlock()
}

func (l *heldLink) close() {
	_ = l.ln.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}
