package ari

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"

	"github.com/crmlink/crmlink/routing"
)

// startInbound serves an Inbound for the application crmlink on a loopback port, and for
// the call observer's when one is given.
func startInbound(t *testing.T, observers ...*Observer) (*Inbound, string) {
	t.Helper()
	return startInboundLogged(t, zerolog.Nop(), observers...)
}

func startInboundLogged(t *testing.T, log zerolog.Logger, observers ...*Observer) (*Inbound, string) {
	t.Helper()
	in, err := NewInbound(Options{
		Application:     "crmlink",
		Decider:         routing.DeciderFunc(func(context.Context, routing.Call) routing.Decision { return routing.Decision{} }),
		FallbackContext: "crmlink-fallback",
		Logger:          log,
	}, "asterisk", "secret")
	require.NoError(t, err)
	for _, o := range observers {
		in.Observe(o)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return in, "ws://" + ln.Addr().String() + "/ari/events"
}

// asteriskDial connects as Asterisk's outbound websocket does, with the credentials given.
func asteriskDial(t *testing.T, url, user, pass string) (*websocket.Conn, error) {
	t.Helper()
	cfg, err := websocket.NewConfig(url, "http://localhost/")
	require.NoError(t, err)
	cfg.Protocol = []string{"ari"}
	cfg.Header = http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}}
	return websocket.DialConfig(cfg)
}

func register(t *testing.T, ws *websocket.Conn, app string) {
	t.Helper()
	require.NoError(t, websocket.Message.Send(ws, `{"type":"ApplicationRegistered","application":"`+app+`","asterisk_id":"02:fc:00:00:00:07"}`))
}

func TestInboundRefusesOtherCredentials(t *testing.T) {
	_, url := startInbound(t)
	for name, cred := range map[string][2]string{"password": {"asterisk", "nope"}, "user": {"admin", "secret"}} {
		t.Run(name, func(t *testing.T) {
			_, err := asteriskDial(t, url, cred[0], cred[1])
			var refused *websocket.DialError
			require.ErrorAs(t, err, &refused)
			assert.Equal(t, websocket.ErrBadStatus, refused.Err)
		})
	}
}

// A connection registering another application is closed: its calls are not ours.
func TestInboundClosesAnotherApplication(t *testing.T) {
	in, url := startInbound(t)
	ws, err := asteriskDial(t, url, "asterisk", "secret")
	require.NoError(t, err)
	defer ws.Close()
	register(t, ws, "someone-else")
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var msg []byte
	require.Error(t, websocket.Message.Receive(ws, &msg), "crmlink closes the connection")
	assert.Zero(t, in.Connections())
}

// Asterisk's connection for the application is served: the controller sets the event
// filter over it (REST over the same websocket) and counts it until it closes.
func TestInboundServesTheApplicationOverTheConnection(t *testing.T) {
	in, url := startInbound(t)
	ws, err := asteriskDial(t, url, "asterisk", "secret")
	require.NoError(t, err)
	register(t, ws, "crmlink")
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var req restRequestMsg
	require.NoError(t, websocket.JSON.Receive(ws, &req))
	assert.Equal(t, "PUT", req.Method)
	assert.Equal(t, "applications/crmlink/eventFilter", req.URI)
	answer, _ := json.Marshal(restResponseMsg{Type: restResponseEvent, RequestID: req.RequestID, StatusCode: 200, MessageBody: "{}"})
	require.NoError(t, websocket.Message.Send(ws, string(answer)))
	require.Eventually(t, in.Connected, 5*time.Second, 10*time.Millisecond, "connected once the filter is set")
	assert.Equal(t, 1, in.Connections())

	require.NoError(t, ws.Close())
	require.Eventually(t, func() bool { return in.Connections() == 0 }, 5*time.Second, 10*time.Millisecond, "forgotten once Asterisk's websocket closes")
}
