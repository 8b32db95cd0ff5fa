package app

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/routing"
)

// cuttable is a TCP proxy to Redis that the test can cut, as a network partition would.
type cuttable struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
}

func newCuttable(t *testing.T, target string) *cuttable {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cuttable{l: l, target: target}
	t.Cleanup(func() { l.Close(); p.setCut(true) })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *cuttable) addr() string { return p.l.Addr().String() }

func (p *cuttable) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// health is /healthz's status code and the detail of one check.
func health(t *testing.T, base, check string) (int, bool, string) {
	t.Helper()
	code, body := httpDo(t, "GET", base+"/healthz", "")
	var h struct {
		Checks map[string]struct {
			OK     bool
			Detail string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(body), &h), body)
	c := h.Checks[check]
	return code, c.OK, c.Detail
}

// Two instances share one Redis, each listing the other in cluster.peers. Cut off from
// Redis while its peer still reaches it, an instance steps aside (/healthz 503, so the load
// balancer sends calls to the peer) yet still routes a call that reaches it from amoCRM;
// once the peer is gone too it is alone and takes calls again (200); reconnected, it is
// back in the pool.
func TestInstanceCutOffFromRedisStepsAsideOnlyForAPeer(t *testing.T) {
	addr, db := testrig.RedisDB(t)
	proxy := newCuttable(t, addr)
	la, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	lb, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	urlA, urlB := "http://"+la.Addr().String(), "http://"+lb.Addr().String()

	a, _, _ := sandboxApp(t, zerolog.Nop(), func(c *config.Config) {
		c.Redis.Addrs, c.Redis.DB, c.Cluster.Peers, c.Queue.Consumer = []string{proxy.addr()}, db, []string{urlB}, "a"
	})
	b, _, _ := sandboxApp(t, zerolog.Nop(), func(c *config.Config) {
		c.Redis.Addrs, c.Redis.DB, c.Cluster.Peers, c.Queue.Consumer = []string{addr}, db, []string{urlA}, "b"
	})
	serve := func(app *App, l net.Listener) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- app.Serve(ctx, l) }()
		var once sync.Once
		stop = func() { once.Do(func() { cancel(); assert.NoError(t, <-done) }) }
		t.Cleanup(stop)
		return stop
	}
	serve(a, la)
	stopB := serve(b, lb)

	for _, u := range []string{urlA, urlB} {
		code, ok, detail := health(t, u, "cluster")
		assert.Equal(t, http.StatusOK, code)
		assert.True(t, ok, detail)
	}

	proxy.setCut(true)
	cut := time.Now()
	testrig.WaitFor(t, 3500*time.Millisecond, "the cut-off instance to step aside", func() bool {
		code, _, _ := health(t, urlA, "cluster")
		return code == http.StatusServiceUnavailable
	})
	t.Logf("stepped aside %s after the cut", time.Since(cut).Round(10*time.Millisecond))
	_, _, detail := health(t, urlA, "cluster")
	assert.Contains(t, detail, "stepping aside for it")
	assert.Contains(t, detail, urlB)
	code, ok, _ := health(t, urlB, "cluster")
	assert.Equal(t, http.StatusOK, code, "the peer that reaches Redis takes the calls")
	assert.True(t, ok)
	d := decide(t, a)
	assert.Equal(t, routing.Routed, d.Result, "a call that still reaches the cut-off instance is routed from amoCRM")

	stopB()
	testrig.WaitFor(t, 3*time.Second, "the instance left alone to take calls again", func() bool {
		code, _, _ := health(t, urlA, "cluster")
		return code == http.StatusOK
	})
	_, _, detail = health(t, urlA, "cluster")
	assert.Contains(t, detail, "no peer reaches it: routing from amoCRM alone")

	proxy.setCut(false)
	testrig.WaitFor(t, 3*time.Second, "Redis connected again", func() bool {
		_, _, detail := health(t, urlA, "cluster")
		return detail == "Redis connected"
	})
}
