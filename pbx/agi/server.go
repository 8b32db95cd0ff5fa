package agi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/internal/allowlist"
	"github.com/crmlink/crmlink/internal/ratelog"
	"github.com/crmlink/crmlink/pbx/dialplan"
	"github.com/crmlink/crmlink/routing"
)

// Defaults; see the package doc for how they relate to the dialplan and the router.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultRingTimeout = 20 * time.Second
)

// Server answers FastAGI requests with routing decisions.
type Server struct {
	decider     routing.Decider
	log         zerolog.Logger
	timeout     time.Duration
	ringTimeout time.Duration
	allowed     allowlist.Networks
	// refused bounds the warnings about refused connections: a port scan or a flood from
	// outside costs one line per interval.
	refused *ratelog.Limiter
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger; the default discards everything.
func WithLogger(l zerolog.Logger) Option {
	return func(s *Server) { s.log = l }
}

// WithTimeout bounds one whole AGI exchange (environment, decision, replies). It must
// exceed the router's lookup timeout. Non-positive values keep DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithRingTimeout sets CRMLINK_RING_TIMEOUT, how long Dial() rings the owner (rounded up to
// whole seconds). Non-positive values keep DefaultRingTimeout.
func WithRingTimeout(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.ringTimeout = d
		}
	}
}

// WithAllowedNetworks lists the networks Asterisk may connect from; a connection from
// elsewhere is closed before a byte is read or written. The default is loopback only
// (127.0.0.0/8, ::1/128): FastAGI carries no password, and an answer says whose client a
// number is.
func WithAllowedNetworks(prefixes ...netip.Prefix) Option {
	return func(s *Server) { s.allowed = append(s.allowed, prefixes...) }
}

// NewServer returns a FastAGI server that asks decider for every "route" request.
func NewServer(decider routing.Decider, opts ...Option) *Server {
	s := &Server{
		decider:     decider,
		log:         zerolog.Nop(),
		timeout:     DefaultTimeout,
		ringTimeout: DefaultRingTimeout,
	}
	for _, o := range opts {
		o(s)
	}
	s.allowed = allowlist.OrLoopback(s.allowed)
	s.refused = ratelog.New(ratelog.DefaultInterval)
	return s
}

// admitted reports whether conn comes from an allowed network.
func (s *Server) admitted(conn net.Conn) bool {
	if s.allowed.Admits(conn.RemoteAddr()) {
		return true
	}
	if ok, suppressed := s.refused.Allow(); ok {
		s.log.Warn().Str("remote", conn.RemoteAddr().String()).Int("suppressed", suppressed).
			Msg("FastAGI connection from outside agi.allowed_networks; closed unanswered")
	}
	return false
}

// ListenAndServe listens on the TCP address (Asterisk's default port is 4573) and serves
// until ctx is cancelled.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("agi: listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts connections on ln until ctx is cancelled, then closes ln, waits for the
// calls already connected (each bounded by the per-connection timeout) and returns nil.
// Any other accept failure that is not transient is returned after the same wait.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()

	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		ln.Close()
	}()

	s.log.Info().Str("addr", ln.Addr().String()).Msg("FastAGI server listening")
	// Requests already accepted must finish even while the server stops.
	connCtx := context.WithoutCancel(ctx)
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.log.Info().Msg("FastAGI server stopping; finishing calls in progress")
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("agi: listener closed: %w", err)
			}
			// Out of file descriptors and similar: back off instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn().Err(err).Dur("retry_in", backoff).Msg("FastAGI accept failed")
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			continue
		}
		backoff = 0
		if !s.admitted(conn) {
			conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(connCtx, conn)
		}()
	}
}

// serveConn runs one AGI exchange. Everything that reads from the peer runs here, under the
// connection's deadline, never in the accept loop.
func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	log := s.log.With().Str("remote", conn.RemoteAddr().String()).Logger()
	defer conn.Close()
	defer func() {
		if p := recover(); p != nil {
			log.Error().Interface("panic", p).Bytes("stack", debug.Stack()).Msg("FastAGI request panicked")
		}
	}()

	deadline := time.Now().Add(s.timeout)
	if err := conn.SetDeadline(deadline); err != nil {
		log.Warn().Err(err).Msg("FastAGI: cannot set connection deadline")
		return
	}
	lr := newLineReader(conn)
	env, err := readEnv(lr)
	if err != nil {
		log.Warn().Err(err).Msg("FastAGI: bad AGI environment; connection closed")
		return
	}
	log = log.With().Str("channel", env["agi_channel"]).Str("uniqueid", env["agi_uniqueid"]).Logger()

	switch script := scriptName(env); script {
	case "route":
		s.route(ctx, conn, lr, env, deadline, log)
	default:
		log.Warn().Str("script", script).Str("request", env["agi_request"]).
			Msg(`FastAGI: unknown script; no variables set (the dialplan should call agi://host:port/route)`)
	}
}

func (s *Server) route(ctx context.Context, conn net.Conn, lr *lineReader, env map[string]string, deadline time.Time, log zerolog.Logger) {
	call := routing.Call{
		Caller:    envValue(env, "agi_callerid"),
		Called:    envValue(env, "agi_dnid"),
		ChannelID: env["agi_uniqueid"],
		LinkedID:  env["agi_arg_1"],
		Asterisk:  routing.SystemName(env["agi_uniqueid"]),
	}
	if call.Called == "" {
		call.Called = envValue(env, "agi_extension")
	}

	// Keep part of the deadline for the replies, so a decision that uses all of its time
	// still reaches the dialplan.
	reserve := min(s.timeout/5, time.Second)
	dctx, cancel := context.WithDeadline(ctx, deadline.Add(-reserve))
	defer cancel()
	d := routing.DecideWithin(dctx, s.decider, call, log)

	a := dialplan.ForDial(d, s.ringTimeout)
	for _, p := range a.Problems {
		log.Error().Str("caller", call.Caller).Msg("FastAGI: decision data rejected: " + p)
	}

	for _, v := range a.AGIVars() {
		if _, err := conn.Write([]byte(setVariableCommand(v.Name, v.Value))); err != nil {
			log.Warn().Err(err).Str("variable", v.Name).Msg("FastAGI: write failed; Asterisk gone")
			return
		}
		if err := readReply(lr); err != nil {
			if errors.Is(err, errHangup) {
				log.Info().Str("variable", v.Name).Msg("FastAGI: caller hung up during routing")
			} else {
				log.Warn().Err(err).Str("variable", v.Name).Msg("FastAGI: SET VARIABLE failed")
			}
			return
		}
	}
	log.Info().
		Str("caller", call.Caller).Str("called", call.Called).Str("linkedid", call.LinkedID).
		Str("result", a.Result).Str("reason", a.Reason).Str("owner", a.Owner).
		Str("source", a.Source).Str("dial", a.Dial).Dur("latency", d.Latency).
		Msg("FastAGI: call routed")
}
