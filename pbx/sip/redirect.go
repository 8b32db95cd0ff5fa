package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/internal/allowlist"
	"github.com/crmlink/crmlink/internal/ratelog"
	"github.com/crmlink/crmlink/pbx/dialplan"
	"github.com/crmlink/crmlink/routing"
)

// Defaults for the options.
const (
	DefaultContactTemplate = "sip:{user}@127.0.0.1:5060"
	DefaultDecideTimeout   = 5 * time.Second
)

const allowedMethods = "INVITE, ACK, CANCEL, OPTIONS"

var (
	errCallerCancelled = errors.New("caller cancelled")
	errTxTerminated    = errors.New("transaction terminated")
)

// RedirectServer answers INVITEs with 302 to the caller's personal manager.
type RedirectServer struct {
	decider routing.Decider
	log     zerolog.Logger
	allowed allowlist.Networks
	// refused bounds the warnings about dropped requests: a flood of INVITEs from outside
	// costs one line per interval.
	refused  *ratelog.Limiter
	contact  sipmsg.Uri
	fallback *sipmsg.Uri
	// fallbackTmpl is the fallback contact when it carries placeholders ({reason}, {owner},
	// {source}, {result}): Asterisk follows a 302 by dialling the Contact's user, and the
	// 302's X-CRMLINK-* headers do not reach the dialplan, so the user part is the only way
	// the decision gets there (as part of EXTEN).
	fallbackTmpl  string
	decideTimeout time.Duration

	ua  *sipgo.UserAgent
	srv *sipgo.Server

	mu       sync.Mutex
	draining bool
	inflight sync.WaitGroup

	testHookDrain func() // called once draining has begun
}

type config struct {
	log             zerolog.Logger
	allowed         []netip.Prefix
	contactTemplate string
	fallbackContact string
	decideTimeout   time.Duration
}

// Option configures a RedirectServer.
type Option func(*config)

// WithLogger sets the logger (sipgo's own messages go there too); the default discards everything.
func WithLogger(l zerolog.Logger) Option {
	return func(c *config) { c.log = l }
}

// WithAllowedNetworks lists the networks requests may come from. A datagram (or TCP
// connection) from elsewhere is dropped before it is parsed: no answer, no transaction
// state, so a forged source address cannot turn the listener into a reflector. The
// default is loopback only (127.0.0.0/8, ::1/128): a redirect server answers who owns a
// number, so it is not for the open internet.
func WithAllowedNetworks(prefixes ...netip.Prefix) Option {
	return func(c *config) { c.allowed = append(c.allowed, prefixes...) }
}

// WithContactTemplate sets the Contact for each dial target; {user} is replaced by the
// target's resource ("PJSIP/101" → "101"). Default DefaultContactTemplate.
func WithContactTemplate(tmpl string) Option {
	return func(c *config) { c.contactTemplate = tmpl }
}

// WithFallbackContact makes fallback answers a 302 to this URI; {reason}, {owner}, {source}
// and {result} in it are replaced by the decision's (sip:fallback-{reason}-{owner}-{source}@pbx),
// so the dialplan that follows the redirect learns why and whose. Without it a fallback is
// answered 480 Temporarily Unavailable, which makes Asterisk's Dial() return so the dialplan
// continues to its own fallback.
func WithFallbackContact(uri string) Option {
	return func(c *config) { c.fallbackContact = uri }
}

// WithDecideTimeout bounds one decision; it must exceed the router's lookup timeout.
// Default DefaultDecideTimeout.
func WithDecideTimeout(d time.Duration) Option {
	return func(c *config) { c.decideTimeout = d }
}

// NewRedirectServer checks the options and builds the server; it listens once served.
func NewRedirectServer(decider routing.Decider, opts ...Option) (*RedirectServer, error) {
	if decider == nil {
		return nil, errors.New("sip: redirect server needs a decider")
	}
	cfg := config{
		log:             zerolog.Nop(),
		contactTemplate: DefaultContactTemplate,
		decideTimeout:   DefaultDecideTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.decideTimeout <= 0 {
		return nil, fmt.Errorf("sip: decide timeout %s must be positive; set it above the router's lookup timeout", cfg.decideTimeout)
	}
	for _, p := range cfg.allowed {
		if !p.IsValid() {
			return nil, errors.New("sip: an allowed network is not a valid prefix; write it like 10.0.0.0/8")
		}
	}
	contact, err := parseContactTemplate(cfg.contactTemplate)
	if err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}

	s := &RedirectServer{
		decider:       decider,
		log:           cfg.log,
		allowed:       allowlist.OrLoopback(cfg.allowed),
		refused:       ratelog.New(ratelog.DefaultInterval),
		contact:       contact,
		decideTimeout: cfg.decideTimeout,
	}
	if cfg.fallbackContact != "" {
		if err := CheckFallbackContact(cfg.fallbackContact); err != nil {
			return nil, fmt.Errorf("sip: %w", err)
		}
		fb, err := parseFallbackContact(fillFallback(cfg.fallbackContact, verdict{}))
		if err != nil {
			return nil, fmt.Errorf("sip: %w", err)
		}
		s.fallback = &fb
		if fillFallback(cfg.fallbackContact, verdict{}) != cfg.fallbackContact {
			s.fallbackTmpl = cfg.fallbackContact
		}
	}

	slogger := slog.New(zerolog.NewSlogHandler(cfg.log.With().Str("component", "sipgo").Logger()))
	s.ua, err = sipgo.NewUA(
		sipgo.WithUserAgent("crmlink"),
		sipgo.WithUserAgentTransactionLayerOptions(sipmsg.WithTransactionLayerLogger(slogger)),
		sipgo.WithUserAgentTransportLayerOptions(sipmsg.WithTransportLayerLogger(slogger)),
	)
	if err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}
	s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(slogger))
	if err != nil {
		s.ua.Close()
		return nil, fmt.Errorf("sip: %w", err)
	}
	s.srv.OnInvite(s.onInvite)
	s.srv.OnOptions(s.onOptions)
	s.srv.OnAck(func(*sipmsg.Request, sipmsg.ServerTransaction) {}) // a stray ACK gets no answer
	s.srv.OnCancel(s.onUnmatched)                                   // CANCELs for our INVITEs are answered by sipgo
	s.srv.OnBye(s.onUnmatched)                                      // we never set up a dialog
	s.srv.OnNoRoute(s.onOther)
	return s, nil
}

// ListenAndServe serves on network "udp" (also udp4, udp6) or "tcp" (tcp4, tcp6) until ctx
// is cancelled.
func (s *RedirectServer) ListenAndServe(ctx context.Context, network, addr string) error {
	var lc net.ListenConfig
	switch network {
	case "udp", "udp4", "udp6":
		conn, err := lc.ListenPacket(ctx, network, addr)
		if err != nil {
			return fmt.Errorf("sip: listen on %s/%s: %w", network, addr, err)
		}
		return s.Serve(ctx, conn)
	case "tcp", "tcp4", "tcp6":
		ln, err := lc.Listen(ctx, network, addr)
		if err != nil {
			return fmt.Errorf("sip: listen on %s/%s: %w", network, addr, err)
		}
		return s.ServeTCP(ctx, ln)
	default:
		return fmt.Errorf("sip: network %q is not supported; use udp or tcp", network)
	}
}

// Serve answers SIP over UDP on conn until ctx is cancelled. Then new INVITEs get 503,
// decisions in progress are answered, conn is closed and Serve returns nil. Serve on
// several sockets with one ctx; once it has ended, the server stays stopped.
func (s *RedirectServer) Serve(ctx context.Context, conn net.PacketConn) error {
	return s.serve(ctx, conn, conn.LocalAddr(), func() error { return s.srv.ServeUDP(allowedPacketConn{conn, s}) })
}

// ServeTCP is Serve for a TCP listener.
func (s *RedirectServer) ServeTCP(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, ln.Addr(), func() error { return s.srv.ServeTCP(allowedListener{ln, s}) })
}

// allowedPacketConn hands sipgo only the datagrams from the allowed networks.
type allowedPacketConn struct {
	net.PacketConn
	s *RedirectServer
}

func (c allowedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || c.s.admitted(addr) {
			return n, addr, err
		}
	}
}

// allowedListener hands sipgo only the TCP connections from the allowed networks.
type allowedListener struct {
	net.Listener
	s *RedirectServer
}

func (l allowedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.s.admitted(c.RemoteAddr()) {
			return c, err
		}
		c.Close()
	}
}

func (s *RedirectServer) serve(ctx context.Context, closer interface{ Close() error }, addr net.Addr, run func() error) error {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			s.drain()
			closer.Close()
		case <-stop:
		}
	}()
	s.log.Info().Str("addr", addr.String()).Str("network", addr.Network()).Msg("SIP redirect server listening")
	err := run()
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("listener closed")
	}
	return fmt.Errorf("sip: serve %s: %w", addr, err)
}

// Close releases sipgo's transaction and transport layers. Call it after every Serve has returned.
func (s *RedirectServer) Close() error {
	return s.ua.Close()
}

// begin admits one INVITE unless the server is stopping.
func (s *RedirectServer) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.inflight.Add(1)
	return true
}

// drain refuses new INVITEs and waits for the decisions in progress, which are bounded by
// the decide timeout.
func (s *RedirectServer) drain() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	if s.testHookDrain != nil {
		s.testHookDrain()
	}
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	t := time.NewTimer(s.decideTimeout + time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn().Msg("SIP redirect server stopped with decisions still running")
	}
}

func (s *RedirectServer) requestLog(req *sipmsg.Request) zerolog.Logger {
	callID := ""
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	return s.log.With().Str("method", string(req.Method)).Str("call_id", callID).Str("src", req.Source()).Logger()
}

// admitted reports whether src is in the allowed networks, and logs (rate-limited) when
// it is not.
func (s *RedirectServer) admitted(src net.Addr) bool {
	if s.allowed.Admits(src) {
		return true
	}
	if ok, suppressed := s.refused.Allow(); ok {
		s.log.Warn().Str("src", src.String()).Int("suppressed", suppressed).
			Msg("SIP request from outside sip_redirect.allowed_networks; dropped unanswered")
	}
	return false
}

func (s *RedirectServer) onInvite(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	log := s.requestLog(req)
	defer func() {
		if p := recover(); p != nil {
			log.Error().Interface("panic", p).Bytes("stack", debug.Stack()).Msg("SIP INVITE handler panicked")
			respond(tx, sipmsg.NewResponseFromRequest(req, sipmsg.StatusInternalServerError, "Server Internal Error", nil), log)
		}
	}()
	if to := req.To(); to != nil && to.Params.Has("tag") {
		// A re-INVITE: we never accept a call, so there is no dialog to refresh.
		respond(tx, sipmsg.NewResponseFromRequest(req, sipmsg.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil), log)
		return
	}
	if !s.begin() {
		res := sipmsg.NewResponseFromRequest(req, sipmsg.StatusServiceUnavailable, "Service Unavailable", nil)
		res.AppendHeader(sipmsg.NewHeader("Retry-After", "5"))
		respond(tx, res, log)
		return
	}
	defer s.inflight.Done()

	call := routing.Call{Called: req.Recipient.User}
	if from := req.From(); from != nil {
		call.Caller = from.Address.User
	}
	if h := req.CallID(); h != nil {
		call.ChannelID = h.Value()
	}

	// sipgo answers 100 Trying by itself when no response is sent within 200 ms, so a slow
	// decision does not make the caller retransmit; a fast one costs no extra packet.
	ctx, cancel := context.WithTimeout(context.Background(), s.decideTimeout)
	defer cancel()
	ctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	if !tx.OnCancel(func(*sipmsg.Request) { abort(errCallerCancelled) }) ||
		!tx.OnTerminate(func(string, error) { abort(errTxTerminated) }) {
		log.Info().Msg("SIP INVITE ended before routing")
		return
	}
	d := routing.DecideWithin(ctx, s.decider, call, log)
	if cause := context.Cause(ctx); errors.Is(cause, errCallerCancelled) || errors.Is(cause, errTxTerminated) {
		// sipgo has already answered CANCEL with 200 and the INVITE with 487.
		log.Info().Str("caller", call.Caller).Err(cause).Msg("SIP caller gave up while routing")
		return
	}

	v := s.verdictFor(d)
	for _, p := range v.Problems {
		log.Error().Str("caller", call.Caller).Msg("SIP: decision data rejected: " + p)
	}
	res := s.response(req, v)
	contacts := make([]string, len(v.contacts))
	for i := range v.contacts {
		contacts[i] = v.contacts[i].String()
	}
	// Logged before the answer leaves, so the log never lags behind what the caller saw.
	log.Info().Str("caller", call.Caller).Str("called", call.Called).
		Str("result", v.Result).Str("reason", v.Reason).Str("owner", v.Owner).Str("source", v.Source).
		Strs("contacts", contacts).Int("status", res.StatusCode).Dur("latency", d.Latency).
		Msg("SIP call redirected")
	respond(tx, res, log)
}

// verdict is a decision reduced to what may go into SIP headers (pbx/dialplan), with the
// contacts to redirect to.
type verdict struct {
	dialplan.Values
	contacts []sipmsg.Uri
}

func (s *RedirectServer) verdictFor(d routing.Decision) verdict {
	v := verdict{Values: dialplan.Of(d)}
	if v.Result == string(routing.Routed) {
		seen := make(map[string]bool, len(d.Targets))
		for _, t := range d.Targets {
			user, ok := contactUser(t.Endpoint)
			if !ok {
				v.Problems = append(v.Problems, "dial target "+dialplan.Quote(t.Endpoint)+" has no plain user; dropped")
				continue
			}
			if seen[user] {
				continue
			}
			if len(v.contacts) == maxContacts {
				v.Problems = append(v.Problems, "more than "+strconv.Itoa(maxContacts)+" contacts; the rest dropped")
				break
			}
			seen[user] = true
			uri := *s.contact.Clone()
			uri.User = user
			v.contacts = append(v.contacts, uri)
		}
		if len(v.contacts) == 0 {
			v.NoTarget()
		}
	}
	return v
}

// response builds the final answer: 302 to the owner's contacts (q descending in the
// decision's order), 302 to the fallback contact, or 480.
func (s *RedirectServer) response(req *sipmsg.Request, v verdict) *sipmsg.Response {
	var res *sipmsg.Response
	switch {
	case v.Result == string(routing.Routed):
		res = sipmsg.NewResponseFromRequest(req, sipmsg.StatusMovedTemporarily, "Moved Temporarily", nil)
		for i, uri := range v.contacts {
			c := &sipmsg.ContactHeader{Address: uri}
			c.Params.Add("q", qValue(i))
			res.AppendHeader(c)
		}
	case s.fallback != nil:
		res = sipmsg.NewResponseFromRequest(req, sipmsg.StatusMovedTemporarily, "Moved Temporarily", nil)
		res.AppendHeader(&sipmsg.ContactHeader{Address: s.fallbackFor(v)})
	default:
		res = sipmsg.NewResponseFromRequest(req, sipmsg.StatusTemporarilyUnavailable, "Temporarily Unavailable", nil)
	}
	for _, h := range v.Headers() {
		res.AppendHeader(sipmsg.NewHeader(h.Name, h.Value))
	}
	return res
}

// qValue is 1.0, 0.9, 0.8 … for the contacts in order (at most maxContacts of them).
func qValue(i int) string {
	if i == 0 {
		return "1.0"
	}
	return "0." + strconv.Itoa(10-i)
}

func (s *RedirectServer) onOptions(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	log := s.requestLog(req)
	res := sipmsg.NewResponseFromRequest(req, sipmsg.StatusOK, "OK", nil)
	res.AppendHeader(sipmsg.NewHeader("Allow", allowedMethods))
	res.AppendHeader(sipmsg.NewHeader("Accept", "application/sdp"))
	respond(tx, res, log)
}

func (s *RedirectServer) onUnmatched(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	respond(tx, sipmsg.NewResponseFromRequest(req, sipmsg.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil), s.requestLog(req))
}

func (s *RedirectServer) onOther(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	log := s.requestLog(req)
	switch req.Method {
	case sipmsg.REGISTER, sipmsg.SUBSCRIBE, sipmsg.NOTIFY, sipmsg.REFER, sipmsg.INFO,
		sipmsg.MESSAGE, sipmsg.PRACK, sipmsg.UPDATE, sipmsg.PUBLISH:
		res := sipmsg.NewResponseFromRequest(req, sipmsg.StatusMethodNotAllowed, "Method Not Allowed", nil)
		res.AppendHeader(sipmsg.NewHeader("Allow", allowedMethods))
		respond(tx, res, log)
	default:
		log.Debug().Msg("SIP method not implemented")
		respond(tx, sipmsg.NewResponseFromRequest(req, sipmsg.StatusNotImplemented, "Not Implemented", nil), log)
	}
}

func respond(tx sipmsg.ServerTransaction, res *sipmsg.Response, log zerolog.Logger) {
	if err := tx.Respond(res); err != nil {
		log.Warn().Err(err).Int("status", res.StatusCode).Msg("SIP response not sent")
	}
}

// fillFallback puts a decision into the fallback contact's placeholders:
// "sip:fallback-{reason}-{owner}-{source}@pbx" becomes "sip:fallback-owner_unavailable-1001-crm@pbx"
// (an empty reason is "unknown"; an empty owner or source stays empty). The values are
// tokens (verdictFor), so they are safe in a URI user.
func fillFallback(tmpl string, v verdict) string {
	reason := v.Reason
	if reason == "" {
		reason = "unknown"
	}
	result := v.Result
	if result == "" {
		result = string(routing.Fallback)
	}
	return strings.NewReplacer("{reason}", reason, "{owner}", v.Owner, "{source}", v.Source, "{result}", result).Replace(tmpl)
}

// fallbackFor is the fallback contact for a decision.
func (s *RedirectServer) fallbackFor(v verdict) sipmsg.Uri {
	if s.fallbackTmpl == "" {
		return *s.fallback.Clone()
	}
	uri, err := parseSIPURI(fillFallback(s.fallbackTmpl, v))
	if err != nil {
		return *s.fallback.Clone()
	}
	return uri
}

// CheckContactTemplate reports what is wrong with sip_redirect.contact_template, as the
// redirect server would at start.
func CheckContactTemplate(tmpl string) error {
	_, err := parseContactTemplate(tmpl)
	return err
}

// CheckFallbackContact reports what is wrong with sip_redirect.fallback_contact, as the
// redirect server would at start, with its placeholders filled by a typical decision.
func CheckFallbackContact(uri string) error {
	_, err := parseFallbackContact(fillFallback(uri, verdict{Values: dialplan.Values{Reason: "owner_unavailable", Owner: "1001", Source: "crm"}}))
	return err
}
