package app

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
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

// peerPair is two instances on one Redis database, each listing the other in
// cluster.peers, each through a proxy the test can cut, serving their HTTP API.
type peerPair struct {
	a, b         *App
	urlA, urlB   string
	toA, toB     *testrig.CutProxy
	stopA, stopB func()
}

func newPeerPair(t *testing.T) *peerPair {
	t.Helper()
	addr, db := testrig.RedisDB(t)
	p := &peerPair{toA: testrig.NewCutProxy(t, addr), toB: testrig.NewCutProxy(t, addr)}
	la, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	lb, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.urlA, p.urlB = "http://"+la.Addr().String(), "http://"+lb.Addr().String()
	instance := func(proxy *testrig.CutProxy, peer, name string) *App {
		app, _, _ := sandboxApp(t, zerolog.Nop(), func(c *config.Config) {
			c.Redis.Addrs, c.Redis.DB, c.Cluster.Peers, c.Queue.Consumer = []string{proxy.Addr()}, db, []string{peer}, name
		})
		return app
	}
	p.a, p.b = instance(p.toA, p.urlB, "a"), instance(p.toB, p.urlA, "b")
	serve := func(app *App, l net.Listener) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- app.Serve(ctx, l) }()
		var once sync.Once
		stop = func() { once.Do(func() { cancel(); assert.NoError(t, <-done) }) }
		t.Cleanup(stop)
		return stop
	}
	p.stopA, p.stopB = serve(p.a, la), serve(p.b, lb)
	return p
}

// Two instances share one Redis, each listing the other in cluster.peers. Cut off from
// Redis while its peer still reaches it, an instance steps aside (/healthz 503, so the load
// balancer sends calls to the peer) yet still routes a call that reaches it from amoCRM;
// once the peer is gone too it is alone and takes calls again (200); reconnected, it is
// back in the pool.
func TestInstanceCutOffFromRedisStepsAsideOnlyForAPeer(t *testing.T) {
	pair := newPeerPair(t)
	a, proxy, urlA, urlB, stopB := pair.a, pair.toA, pair.urlA, pair.urlB, pair.stopB
	for _, u := range []string{urlA, urlB} {
		code, ok, detail := health(t, u, "cluster")
		assert.Equal(t, http.StatusOK, code)
		assert.True(t, ok, detail)
	}

	proxy.Cut()
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

	proxy.Heal()
	testrig.WaitFor(t, 3*time.Second, "Redis connected again", func() bool {
		_, _, detail := health(t, urlA, "cluster")
		return detail == "Redis connected"
	})
}

// Every instance cut off from Redis (its master down for all): each learns from the others'
// /healthz that they are cut off too, which lets it keep spending its own share of the
// amoCRM budget past the first seconds; one peer back on Redis ends that.
func TestInstancesLearnThatEveryPeerIsCutOffToo(t *testing.T) {
	pair := newPeerPair(t)
	a, proxyA, proxyB := pair.a, pair.toA, pair.toB
	require.NotNil(t, a.cluster)
	assert.False(t, a.cluster.peersCutOff(), "both on Redis")

	proxyA.Cut()
	testrig.WaitFor(t, 5*time.Second, "a steps aside: its survey found b on Redis", func() bool {
		code, _, _ := health(t, pair.urlA, "cluster")
		return code == http.StatusServiceUnavailable
	})
	assert.False(t, a.cluster.peersCutOff(), "a alone cut off: its peer reaches Redis")

	proxyB.Cut()
	testrig.WaitFor(t, 5*time.Second, "a learns that b is cut off too", a.cluster.peersCutOff)

	proxyB.Heal()
	testrig.WaitFor(t, peersCutOffFresh+3*time.Second, "a learns that b is back on Redis", func() bool { return !a.cluster.peersCutOff() })
}

// How a cut-off instance reads its peers' /healthz: a peer takes calls with Redis only when
// it answers 200 with its redis check ok; it is cut off too only when its redis check
// fails, whatever its status (a peer on Redis whose Asterisk is down answers 503 and still
// spends the amoCRM budget through Redis); a peer that does not answer is neither.
func TestSurveyReadsThePeersRedisCheck(t *testing.T) {
	for _, tc := range []struct {
		name               string
		status             int
		body               string
		takesCalls, cutOff bool
	}{
		{"on Redis, taking calls", 200, `{"checks":{"redis":{"ok":true},"cluster":{"ok":true}}}`, true, false},
		{"on Redis, Asterisk down", 503, `{"checks":{"redis":{"ok":true},"ari":{"ok":false}}}`, false, false},
		{"cut off and stepping aside", 503, `{"checks":{"redis":{"ok":false},"cluster":{"ok":false}}}`, false, true},
		{"cut off, alone", 200, `{"checks":{"redis":{"ok":false}}}`, false, true},
		{"garbage", 200, `<html>`, false, false},
		{"no redis check", 200, `{"checks":{}}`, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(peer.Close)
			s := newStepAside(nil, []string{peer.URL}, zerolog.Nop())
			withRedis, allCutOff := s.survey(context.Background())
			assert.Equal(t, tc.takesCalls, withRedis == peer.URL, "takes calls with Redis")
			assert.Equal(t, tc.cutOff, allCutOff, "cut off too")
		})
	}
	t.Run("a peer taking calls is enough; a hanging one is not waited for", func(t *testing.T) {
		hang := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(func() { close(hang); slow.Close() })
		good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"checks":{"redis":{"ok":true}}}`))
		}))
		t.Cleanup(good.Close)
		s := newStepAside(nil, []string{slow.URL, good.URL}, zerolog.Nop())
		start := time.Now()
		withRedis, allCutOff := s.survey(context.Background())
		assert.Equal(t, good.URL, withRedis)
		assert.False(t, allCutOff)
		assert.Less(t, time.Since(start), clusterPeerTimeout/2, "answered without the hanging peer")
	})
	t.Run("no answer", func(t *testing.T) {
		s := newStepAside(nil, []string{"http://127.0.0.1:1"}, zerolog.Nop())
		withRedis, allCutOff := s.survey(context.Background())
		assert.Empty(t, withRedis)
		assert.False(t, allCutOff)
	})
}
