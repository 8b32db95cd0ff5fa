package ari

import (
	"context"
	"net/http"
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
