package e2e

import (
	"context"
	"encoding/base64"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/routing"
)

// inboundExten is a [from-trunk] number wired to Stasis(crmlink-inbound): the application
// of the websocket the rig's Asterisk opens to crmlink (ari.conf [crmlink-outbound],
// websocket_client.conf [crmlink-outbound]).
const inboundExten = "800"

// The credentials and address of asterisk-conf/websocket_client.conf [crmlink-outbound].
const (
	inboundListen   = "127.0.0.1:8097"
	inboundUser     = "asterisk"
	inboundPassword = "crmlink-inbound"
)

// withInbound runs crmlink with no ARI connection of its own: Asterisk connects out to it.
func withInbound(c *config.Config) {
	c.Asterisk.ARI.Enabled = false
	c.Asterisk.ARI.Application = "crmlink-inbound"
	c.Asterisk.ARI.Inbound = config.ARIInbound{Enabled: true, Listen: inboundListen, Username: inboundUser, Password: inboundPassword}
}

// A known client's call over the websocket Asterisk opened to crmlink rings the owner, is
// bridged when she answers, and gives one outcome naming the Asterisk and one call note.
func TestARIInboundRoutedCallReachesOwner(t *testing.T) {
	s := startStack(t, withInbound)
	anna := managerPhone(t, s.ast, "101")
	call := dial(t, s.ast, newCaller(t, s.ast, annaClient), inboundExten)
	in := nextIncoming(t, anna, callWait)
	assert.Equal(t, annaClient, in.From(), "the manager sees the client's number")
	answerAndCheckBridged(t, s, in, call, annaClient, annaUser, "crm")
	hangupBoth(t, in, call)

	o := s.nextOutcome(t)
	assert.Equal(t, routing.Routed, o.Decision.Result)
	assert.True(t, o.Answered)
	assert.Equal(t, crm.UserID(annaUser), o.AnsweredBy)
	assert.Equal(t, inboundExten, o.Called)
	assert.Regexp(t, regexp.MustCompile(`^([0-9a-f]{2}:){5}[0-9a-f]{2}$`), o.Asterisk, "the outcome names the Asterisk the call was on (its entity id)")
	callNote(t, s, o)
	select {
	case extra := <-s.outcomes:
		t.Fatalf("a second outcome for one call: %+v", extra)
	case <-time.After(time.Second):
	}
	assert.Contains(t, s.metrics(t), "crmlink_ari_inbound_connections 1")
}

// A websocket with other credentials than asterisk.ari.inbound's is refused before it is
// upgraded, and Asterisk's own connection stays the only one.
func TestARIInboundWrongCredentialsRefused(t *testing.T) {
	s := startStack(t, withInbound)
	for name, auth := range map[string]string{
		"wrong password": inboundUser + ":nope",
		"wrong user":     "admin:" + inboundPassword,
		"none":           "",
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := websocket.NewConfig("ws://"+inboundListen+"/ari/events", "http://localhost/")
			require.NoError(t, err)
			cfg.Protocol = []string{"ari"}
			if auth != "" {
				cfg.Header = http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(auth))}}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ws, err := cfg.DialContext(ctx)
			if err == nil {
				_ = ws.Close()
			}
			var refused *websocket.DialError
			require.ErrorAs(t, err, &refused)
			assert.Equal(t, websocket.ErrBadStatus, refused.Err, "the handshake is refused")
		})
	}
	assert.Contains(t, s.metrics(t), "crmlink_ari_inbound_connections 1", "only Asterisk is connected")
}
