package ari

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/rs/zerolog"
	"golang.org/x/net/websocket"

	"github.com/crmlink/crmlink/routing"
)

// Inbound accepts the ARI Outbound WebSockets of Asterisks (Asterisk 20.15, 21.10, 22.5
// and later: ari.conf type = outbound_websocket, websocket_client.conf): Asterisk connects to
// crmlink, presents the credentials of websocket_client.conf (HTTP Basic) and the
// application's events arrive on the connection, which carries the REST requests too.
// Every connection is served by a controller of its own, built from the same Options, so
// that the calls, the endpoint states and the REST requests of each Asterisk stay with it;
// its calls' outcomes name it (the asterisk_id its events carry).
//
// The call observer's application comes the same way when it is given (Observe): each
// Asterisk opens a connection of its own for it (ari.conf, a second outbound_websocket),
// which the observer serves. Either connection answers the router about the phones of its
// Asterisk (Presence).
type Inbound struct {
	opts       Options
	user, pass string
	log        zerolog.Logger
	mu         sync.Mutex
	conns      map[*Controller]bool
	wg         sync.WaitGroup
	observer   *Observer
	presence   *asteriskPresence
	refused    sync.Map // application name -> struct{}: refusals logged once
}

// NewInbound checks the options as New does (URL and WSURL are not used: Asterisk
// connects) and the credentials Asterisk must present.
func NewInbound(opts Options, user, pass string) (*Inbound, error) {
	if user == "" || pass == "" {
		return nil, errors.New("ari inbound: a username and a password are required")
	}
	opts.URL, opts.WSURL = "inbound", "inbound"
	opts.Transport = TransportWebsocket
	if _, err := New(opts); err != nil {
		return nil, err
	}
	return &Inbound{opts: opts, user: user, pass: pass, log: opts.Logger, conns: map[*Controller]bool{}, presence: newAsteriskPresence()}, nil
}

// Observe serves the call observer's application (ObserverOptions.Inbound) on the
// connections Asterisks open for it. Call it before Serve.
func (in *Inbound) Observe(o *Observer) {
	in.observer = o
	o.presence = in.presence
}

// Presence answers the router about the phones of the Asterisks connected now, each over
// its own connection: the call's Asterisk when routing.Call.Asterisk names one, any
// connected one otherwise.
func (in *Inbound) Presence() routing.Presence { return in.presence }

// Connected reports whether at least one Asterisk is connected with the application.
func (in *Inbound) Connected() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for c := range in.conns {
		if c.Connected() {
			return true
		}
	}
	return false
}

// Connections is the number of Asterisks connected now.
func (in *Inbound) Connections() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.conns)
}

// ActiveCalls is the number of calls handled now, over every connection.
func (in *Inbound) ActiveCalls() int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	var n int64
	for c := range in.conns {
		n += c.ActiveCalls()
	}
	return n
}

// registeredTimeout bounds the wait for Asterisk's first message on a new connection.
const registeredTimeout = 5 * time.Second

// Serve accepts connections on ln until ctx ends, then drains every connection's calls
// (DrainTimeout) and returns.
func (in *Inbound) Serve(ctx context.Context, ln net.Listener) error {
	log := in.log.With().Str("component", "ari-inbound").Str("listen", ln.Addr().String()).Logger()
	ws := websocket.Server{
		// Handshake runs before the upgrade: a refusal is an HTTP 403 and nothing is served.
		Handshake: func(cfg *websocket.Config, r *http.Request) error {
			user, pass, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(in.user)) != 1 ||
				subtle.ConstantTimeCompare([]byte(pass), []byte(in.pass)) != 1 {
				log.Warn().Str("remote", r.RemoteAddr).Bool("credentials", ok).Msg("ARI inbound: connection refused: wrong credentials")
				return errors.New("unauthorized")
			}
			cfg.Protocol = []string{"ari"}
			return nil
		},
		Handler: func(conn *websocket.Conn) {
			in.wg.Add(1)
			defer in.wg.Done()
			in.serveConn(ctx, conn, log.With().Str("remote", conn.Request().RemoteAddr).Logger())
		},
	}
	srv := &http.Server{Handler: ws, ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	log.Info().Msg("accepting ARI outbound websockets from Asterisk")
	err := srv.Serve(ln)
	in.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// registered is Asterisk's first message on an outbound websocket.
type registered struct {
	Type        string `json:"type"`
	Application string `json:"application"`
	AsteriskID  string `json:"asterisk_id"`
}

// serveConn serves one Asterisk's connection until it closes or ctx ends.
func (in *Inbound) serveConn(ctx context.Context, conn *websocket.Conn, log zerolog.Logger) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(registeredTimeout))
	var data []byte
	var first registered
	if err := websocket.Message.Receive(conn, &data); err != nil || json.Unmarshal(data, &first) != nil {
		log.Warn().Err(err).Msg("ARI inbound: no ApplicationRegistered from Asterisk; closing")
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	switch {
	case first.Type == "ApplicationRegistered" && first.Application == in.opts.Application:
	case first.Type == "ApplicationRegistered" && in.observer != nil && first.Application == in.observer.opts.Application:
		in.observer.serveConn(ctx, conn, first.AsteriskID, log)
		return
	default:
		// Asterisk reconnects every reconnect_interval: say it once per application.
		if _, said := in.refused.LoadOrStore(first.Application, struct{}{}); !said {
			want := in.opts.Application
			if in.observer != nil {
				want += " or " + in.observer.opts.Application
			}
			log.Warn().Str("type", first.Type).Str("application", first.Application).Str("want", want).
				Msg("ARI inbound: Asterisk registered an application crmlink does not serve here (ari.conf outbound_websocket apps; one application per connection); closing its connections")
		}
		return
	}
	opts := in.opts
	opts.Logger = log.With().Str("asterisk", first.AsteriskID).Logger()
	c, err := New(opts)
	if err != nil { // checked by NewInbound
		log.Error().Err(err).Msg("ARI inbound")
		return
	}
	c.asterisk = first.AsteriskID
	c.rest.base = "" // no HTTP way to this Asterisk: REST goes over its connection only
	in.mu.Lock()
	in.conns[c] = true
	in.mu.Unlock()
	removePresence := in.presence.add(first.AsteriskID, c)
	defer func() {
		removePresence()
		in.mu.Lock()
		delete(in.conns, c)
		in.mu.Unlock()
	}()
	opts.Logger.Info().Msg("ARI inbound: Asterisk connected")
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	_ = c.run(runCtx, func(wsCtx context.Context, events chan<- ari.Event, quit <-chan struct{}, up chan<- struct{}, log zerolog.Logger) {
		defer cancel() // the connection is gone: drain and stop this controller
		s, err := c.serve(wsCtx, conn, events, quit, log)
		if err != nil {
			log.Warn().Err(err).Msg("ARI inbound: cannot serve the connection")
			return
		}
		close(up)
		stop := context.AfterFunc(wsCtx, s.close)
		err = <-s.readErr
		stop()
		c.rest.useSocket(nil)
		c.connected.Store(false)
		if wsCtx.Err() == nil {
			log.Warn().Err(err).Msg("ARI inbound: Asterisk's websocket closed; it reconnects (websocket_client.conf reconnect_interval)")
		}
	})
}

// errNoHTTP: a controller serving an inbound connection has no HTTP way to Asterisk.
var errNoHTTP = fmt.Errorf("ARI inbound connection closed: %w", errSocketDown)
