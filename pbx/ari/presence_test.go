package ari

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/routing"
)

const endpointList = `[{"technology":"PJSIP","resource":"101","state":"online"},
{"technology":"PJSIP","resource":"102","state":"offline"},
{"technology":"PJSIP","resource":"103","state":"unknown"}]`

func TestEndpointsOnline(t *testing.T) {
	cases := []struct {
		name      string
		refreshed bool
		stale     bool
		endpoints []string
		asked     map[string]string // endpoint GETs and their answers
		want      []bool
		wantReqs  []string
	}{
		{
			name: "online and unknown in a fresh list: nothing asked", refreshed: true,
			endpoints: []string{"PJSIP/101", "PJSIP/103"}, want: []bool{true, true},
		},
		{
			name: "a trunk dial string cannot be checked and counts as online", refreshed: true,
			endpoints: []string{"PJSIP/79161234567@trunk", "101"}, want: []bool{true, true},
		},
		{
			name: "offline in the list is asked again: the phone may have just registered", refreshed: true,
			endpoints: []string{"PJSIP/101", "PJSIP/102"}, asked: map[string]string{"PJSIP/102": "online"},
			want: []bool{true, true}, wantReqs: []string{"GET /endpoints/PJSIP/102"},
		},
		{
			name: "offline when asked", refreshed: true,
			endpoints: []string{"PJSIP/102"}, asked: map[string]string{"PJSIP/102": "offline"},
			want: []bool{false}, wantReqs: []string{"GET /endpoints/PJSIP/102"},
		},
		{
			name: "not in the list is asked", refreshed: true,
			endpoints: []string{"PJSIP/104"}, asked: map[string]string{"PJSIP/104": "offline"},
			want: []bool{false}, wantReqs: []string{"GET /endpoints/PJSIP/104"},
		},
		{
			name: "no list yet: asked", endpoints: []string{"PJSIP/101"}, asked: map[string]string{"PJSIP/101": "online"},
			want: []bool{true}, wantReqs: []string{"GET /endpoints/PJSIP/101"},
		},
		{
			name: "a stale list is not trusted", refreshed: true, stale: true,
			endpoints: []string{"PJSIP/101"}, asked: map[string]string{"PJSIP/101": "offline"},
			want: []bool{false}, wantReqs: []string{"GET /endpoints/PJSIP/101"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeARI(t)
			f.set("GET /endpoints", http.StatusOK, endpointList)
			for ep, state := range tc.asked {
				f.set("GET /endpoints/"+ep, http.StatusOK, `{"state":"`+state+`"}`)
			}
			c := newTestController(t, f, make(chan routing.CallOutcome, 1))
			if tc.refreshed {
				require.NoError(t, c.refreshPresence(context.Background()))
			}
			if tc.stale {
				c.presence.at = c.presence.at.Add(-c.presenceMaxAge() - time.Second)
			}
			before := len(f.requests())

			got, err := c.EndpointsOnline(context.Background(), "", tc.endpoints)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			if tc.wantReqs == nil {
				assert.Empty(t, f.requests()[before:], "requests to ARI")
			} else {
				assert.Equal(t, tc.wantReqs, f.requests()[before:], "requests to ARI")
			}
		})
	}
}

// A failed check never blocks a call: the endpoint counts as online and the error is told.
func TestEndpointsOnlineWhenARIFails(t *testing.T) {
	f := newFakeARI(t)
	f.set("GET /endpoints/PJSIP/101", http.StatusInternalServerError, `{}`)
	c := newTestController(t, f, make(chan routing.CallOutcome, 1))

	got, err := c.EndpointsOnline(context.Background(), "", []string{"PJSIP/101"})
	require.Error(t, err)
	assert.Equal(t, []bool{true}, got)
}

// An originate Asterisk cannot place (the phone has no registered contact) is told from
// other failures by ARI's answer, and the phone is then asked about on the next call.
func TestUnreachablePhone(t *testing.T) {
	cases := []struct {
		name        string
		status      int
		body        string
		unreachable bool
	}{
		{"no registered contact", http.StatusInternalServerError, `{"error":"Allocation failed"}`, true},
		{"another server error", http.StatusInternalServerError, `{"message":"Internal error"}`, false},
		{"no such application", http.StatusBadRequest, `{"message":"Stasis application crmlink not registered"}`, false},
		{"garbage", http.StatusInternalServerError, `<html>`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeARI(t)
			f.set("POST /channels", c.status, c.body)
			r := newRESTClient(f.url(), "u", "p", time.Second, 4)
			err := r.originate(context.Background(), originateRequest{Endpoint: "PJSIP/101", App: "crmlink", ChannelID: "crmlink-leg-1"})
			require.Error(t, err)
			assert.Equal(t, c.unreachable, isUnreachable(err), "%v", err)
		})
	}
	t.Run("a phone found unreachable is no longer taken as online from the list", func(t *testing.T) {
		var p presenceCache
		now := time.Now()
		p.markOffline("PJSIP/101") // before any list: nothing to mark
		p.store(map[string]string{"PJSIP/101": "online", "PJSIP/102": "online"}, now)
		p.markOffline("PJSIP/101")
		p.markOffline("PJSIP/999") // not in the list: not added
		assert.False(t, p.online("PJSIP/101", now, time.Minute))
		assert.True(t, p.online("PJSIP/102", now, time.Minute))
		assert.NotContains(t, p.states, "PJSIP/999")
	})
}

// The call observer's connection keeps its Asterisk's endpoint list for the TTL: calls to
// a registered phone cost one GET /endpoints per TTL, however many come and however
// concurrently; a phone that logged out is seen offline once the list expires.
func TestRESTPresenceKeepsTheListForTTL(t *testing.T) {
	const calls = 50
	f := newFakeARI(t)
	f.set("GET /endpoints", http.StatusOK, `[{"technology":"PJSIP","resource":"101","state":"online"}]`)
	p := newRESTPresence(newRESTClient(f.url(), "u", "p", time.Second, 4), time.Hour)
	ask := func(endpoints ...string) []bool {
		t.Helper()
		on, err := p.EndpointsOnline(context.Background(), "", endpoints)
		require.NoError(t, err)
		return on
	}

	answers := make(chan []bool, calls)
	for range calls {
		go func() {
			on, _ := p.EndpointsOnline(context.Background(), "", []string{"PJSIP/101"})
			answers <- on
		}()
	}
	for range calls {
		assert.Equal(t, []bool{true}, <-answers)
	}
	assert.Equal(t, []string{"GET /endpoints"}, f.requests(), "%d concurrent calls, one list", calls)

	// She logs out; once the list expires, the next call loads it anew and believes it.
	f.set("GET /endpoints", http.StatusOK, `[{"technology":"PJSIP","resource":"101","state":"offline"}]`)
	p.cache.store(p.cache.states, time.Now().Add(-p.ttl-time.Second))
	assert.Equal(t, []bool{false}, ask("PJSIP/101"), "offline past the TTL")
	assert.Equal(t, []string{"GET /endpoints", "GET /endpoints"}, f.requests(), "the fresh list is not asked about again")

	// Offline in a list of before this call: asked, since she may have just registered.
	f.set("GET /endpoints/PJSIP/101", http.StatusOK, `{"state":"online"}`)
	assert.Equal(t, []bool{true, true}, ask("PJSIP/101", "PJSIP/7916@trunk"), "registered again: rings at once")
	assert.Equal(t, []string{"GET /endpoints", "GET /endpoints", "GET /endpoints/PJSIP/101"}, f.requests())
}

// A list that cannot be loaded leaves each phone to be asked, as the controller does
// before its first list; a slow load never holds a call past its context, and the list it
// brings serves the calls after.
func TestRESTPresenceWhenTheListFails(t *testing.T) {
	t.Run("list refused: each phone asked", func(t *testing.T) {
		f := newFakeARI(t)
		f.set("GET /endpoints", http.StatusInternalServerError, `{}`)
		f.set("GET /endpoints/PJSIP/101", http.StatusOK, `{"state":"offline"}`)
		p := newRESTPresence(newRESTClient(f.url(), "u", "p", time.Second, 4), time.Hour)
		on, err := p.EndpointsOnline(context.Background(), "", []string{"PJSIP/101"})
		require.NoError(t, err)
		assert.Equal(t, []bool{false}, on)
		assert.Equal(t, []string{"GET /endpoints", "GET /endpoints/PJSIP/101"}, f.requests())
	})
	t.Run("slow list: the call's context bounds the wait", func(t *testing.T) {
		f := newFakeARI(t)
		f.set("GET /endpoints", http.StatusOK, `[{"technology":"PJSIP","resource":"101","state":"online"}]`)
		release := make(chan struct{})
		f.handle("GET /endpoints", func() int { <-release; return http.StatusOK })
		p := newRESTPresence(newRESTClient(f.url(), "u", "p", 5*time.Second, 4), time.Hour)

		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := p.EndpointsOnline(ctx, "", []string{"PJSIP/101"})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), time.Second, "answered at the call's deadline, not the REST timeout")

		close(release)
		require.Eventually(t, func() bool { return !p.cache.loadedAt().IsZero() }, 5*time.Second, 5*time.Millisecond,
			"the load outlives the call that began it")
		on, err := p.EndpointsOnline(context.Background(), "", []string{"PJSIP/101"})
		require.NoError(t, err)
		assert.Equal(t, []bool{true}, on)
		assert.Equal(t, []string{"GET /endpoints"}, f.requests(), "the late list serves the next call")
	})
}

// stubPresence is a comparable routing.Presence (asteriskPresence tells its sources apart).
type stubPresence struct {
	fn func(ctx context.Context) ([]bool, error)
}

func (s *stubPresence) EndpointsOnline(ctx context.Context, _ string, _ []string) ([]bool, error) {
	return s.fn(ctx)
}

// A call whose Asterisk is not named asks every connected Asterisk at once, within the
// router's deadline.
func TestAsteriskPresenceAsksEveryAsteriskAtOnce(t *testing.T) {
	cases := []struct {
		name    string
		answers [][]bool // each Asterisk's; nil: never answers
		want    []bool
		wantErr error
	}{
		{name: "online on one of them is online", answers: [][]bool{{false, true}, {true, false}, {false, false}}, want: []bool{true, true}},
		{name: "offline on all", answers: [][]bool{{false, false}, {false, false}}, want: []bool{false, false}},
		{name: "one silent: unknown at the deadline", answers: [][]bool{{true, true}, nil}, wantErr: context.DeadlineExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newAsteriskPresence()
			// Each answers only once all were asked: asked one after another, none would
			// before the deadline.
			var n atomic.Int32
			all := make(chan struct{})
			for i, on := range tc.answers {
				defer p.add(fmt.Sprintf("02:00:00:00:00:%02d", i), &stubPresence{fn: func(ctx context.Context) ([]bool, error) {
					if int(n.Add(1)) == len(tc.answers) {
						close(all)
					}
					select {
					case <-all:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
					if on == nil {
						<-ctx.Done()
						return nil, ctx.Err()
					}
					return on, nil
				}})()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			got, err := p.EndpointsOnline(ctx, "", []string{"PJSIP/101", "PJSIP/102"})
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Less(t, time.Since(start), 3*time.Second)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
