// Package siptest is a small SIP phone for crmlink's tests: it places calls (INVITE with a
// static PCMU offer, CANCEL, BYE) and receives them (ring, answer, reject, hang up), against
// crmlink's redirect server, another Phone, or a real Asterisk.
//
// A Phone listens on one UDP address and sends everything from it, so the Via and Contact it
// advertises are where Asterisk's answers and requests arrive. Give a fixed BindPort for a
// phone that Asterisk calls through a static AOR contact (sip:101@127.0.0.1:5161); port 0
// picks a free one (Addr tells which).
//
// It opens one RTP socket whose port is in its SDP and drains whatever arrives; it sends no
// media. It answers OPTIONS, re-INVITE and UPDATE with 200 (the same SDP), INFO, NOTIFY and
// MESSAGE with 200, and BYE of a known call with 200. A Phone cannot call itself (calls are
// matched by Call-ID).
package siptest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// PhoneOptions configures a Phone.
type PhoneOptions struct {
	// User is the phone's SIP user: the From of its calls and the user of its Contact.
	User string
	// BindHost is the IP address to listen on and advertise; default 127.0.0.1.
	BindHost string
	// BindPort is the UDP port; 0 picks a free one.
	BindPort int
	// Password answers a registrar's digest challenge (user name = User); empty for none.
	Password string
	// Logger receives the phone's and sipgo's messages; the zero value is silent.
	Logger zerolog.Logger
}

// Phone is a SIP user agent for tests. Its methods are safe for concurrent use.
type Phone struct {
	user     string
	password string
	addr     netip.AddrPort
	log      zerolog.Logger

	regCallID string
	regCSeq   atomic.Uint32

	ua  *sipgo.UserAgent
	srv *sipgo.Server
	cli *sipgo.Client

	conn net.PacketConn
	rtp  net.PacketConn
	sdp  []byte

	incoming chan *IncomingCall

	mu    sync.Mutex
	calls map[string]*leg // by Call-ID

	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// NewPhone binds the phone's SIP and RTP sockets and starts serving. The phone closes when
// ctx is cancelled or Close is called.
func NewPhone(ctx context.Context, opts PhoneOptions) (*Phone, error) {
	if opts.User == "" || strings.ContainsAny(opts.User, " \t\r\n<>@:;\"") {
		return nil, fmt.Errorf("siptest: phone user %q must be a plain SIP user such as \"101\"", opts.User)
	}
	if opts.BindHost == "" {
		opts.BindHost = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(opts.BindHost)
	if err != nil || ip.IsUnspecified() {
		return nil, fmt.Errorf("siptest: bind host %q must be one IP address (it goes into Via, Contact and SDP)", opts.BindHost)
	}
	if opts.BindPort < 0 || opts.BindPort > 65535 {
		return nil, fmt.Errorf("siptest: bind port %d out of range", opts.BindPort)
	}

	conn, err := net.ListenPacket("udp", netip.AddrPortFrom(ip, uint16(opts.BindPort)).String())
	if err != nil {
		return nil, fmt.Errorf("siptest: listen for SIP: %w", err)
	}
	rtp, err := net.ListenPacket("udp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("siptest: listen for RTP: %w", err)
	}
	addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	p := &Phone{
		user:      opts.User,
		password:  opts.Password,
		regCallID: uuid.NewString(),
		addr:      addr,
		log:       opts.Logger.With().Str("phone", opts.User).Str("addr", addr.String()).Logger(),
		conn:      conn,
		rtp:       rtp,
		incoming:  make(chan *IncomingCall, 16),
		calls:     make(map[string]*leg),
		closed:    make(chan struct{}),
	}
	p.sdp = staticSDP(ip, rtp.LocalAddr().(*net.UDPAddr).Port)

	slogger := slog.New(zerolog.NewSlogHandler(p.log.With().Str("component", "sipgo").Logger()))
	host := ip.String()
	p.ua, err = sipgo.NewUA(
		sipgo.WithUserAgent("crmlink-test-phone"),
		sipgo.WithUserAgentHostname(host),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slogger)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slogger)),
	)
	if err == nil {
		p.srv, err = sipgo.NewServer(p.ua, sipgo.WithServerLogger(slogger))
	}
	if err == nil {
		// Every request leaves from the listening socket, so Via, Contact and the real
		// source agree (sipgo would otherwise open an ephemeral port).
		p.cli, err = sipgo.NewClient(p.ua,
			sipgo.WithClientLogger(slogger),
			sipgo.WithClientHostname(host),
			sipgo.WithClientPort(int(addr.Port())),
			sipgo.WithClientConnectionAddr(addr.String()),
		)
	}
	if err != nil {
		conn.Close()
		rtp.Close()
		if p.ua != nil {
			p.ua.Close()
		}
		return nil, fmt.Errorf("siptest: %w", err)
	}
	p.routes()

	ready := &readyConn{PacketConn: conn, ready: make(chan struct{})}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		if err := p.srv.ServeUDP(ready); err != nil {
			p.log.Debug().Err(err).Msg("phone stopped serving")
		}
	}()
	go func() {
		defer p.wg.Done()
		drain(rtp)
	}()
	// sipgo registers the socket for sending before its first read; wait for that read so
	// that a call placed right away leaves from this socket.
	select {
	case <-ready.ready:
	case <-ctx.Done():
		p.Close()
		return nil, ctx.Err()
	}
	go func() {
		select {
		case <-ctx.Done():
			p.Close()
		case <-p.closed:
		}
	}()
	p.log.Debug().Msg("phone ready")
	return p, nil
}

// readyConn reports the first read on the socket.
type readyConn struct {
	net.PacketConn
	once  sync.Once
	ready chan struct{}
}

func (c *readyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.once.Do(func() { close(c.ready) })
	return c.PacketConn.ReadFrom(b)
}

func drain(c net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		if _, _, err := c.ReadFrom(buf); err != nil {
			return
		}
	}
}

// Close ends all calls without signalling, releases the sockets and waits for the phone's goroutines.
func (p *Phone) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		close(p.closed) // under mu: Call adds to wg only while the phone is open
		calls := make([]*leg, 0, len(p.calls))
		for _, l := range p.calls {
			calls = append(calls, l)
		}
		p.mu.Unlock()
		for _, l := range calls {
			l.end(EndPhoneClosed)
		}
		p.conn.Close()
		p.rtp.Close()
		p.ua.Close()
		p.wg.Wait()
	})
	return nil
}

// Register binds the phone's Contact to its user at the registrar (for Asterisk: the
// endpoint's AOR), e.g. Register(ctx, "sip:127.0.0.1:5060", 5*time.Minute). A digest
// challenge is answered with PhoneOptions.Password. The final response is returned; a
// non-2xx is not an error. The phone does not refresh the binding by itself.
func (p *Phone) Register(ctx context.Context, registrar string, expires time.Duration) (*Response, error) {
	var uri sip.Uri
	if err := sip.ParseUri(registrar, &uri); err != nil || (uri.Scheme != "sip" && uri.Scheme != "sips") || uri.Host == "" {
		return nil, fmt.Errorf("siptest: registrar %q is not a SIP URI like sip:127.0.0.1:5060", registrar)
	}
	if expires < 0 {
		return nil, errors.New("siptest: negative registration expiry")
	}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: uri.Scheme, Host: uri.Host, Port: uri.Port})
	aor := sip.Uri{Scheme: uri.Scheme, User: p.user, Host: uri.Host}
	from := &sip.FromHeader{Address: aor}
	from.Params.Add("tag", uuid.NewString())
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	callID := sip.CallIDHeader(p.regCallID) // one Call-ID for all of this phone's bindings (RFC 3261 10.2)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: p.regCSeq.Add(1), MethodName: sip.REGISTER})
	req.AppendHeader(p.contact())
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	req.SetBody(nil)

	res, err := p.cli.Do(ctx, req)
	if err == nil && p.password != "" &&
		(res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired) {
		res, err = p.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.user, Password: p.password})
		if err == nil {
			p.regCSeq.Store(req.CSeq().SeqNo)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("siptest: REGISTER: %w", err)
	}
	return newResponse(res), nil
}

// Unregister removes the phone's binding at the registrar (Expires: 0).
func (p *Phone) Unregister(ctx context.Context, registrar string) (*Response, error) {
	return p.Register(ctx, registrar, 0)
}

// User is the phone's SIP user.
func (p *Phone) User() string { return p.user }

// Addr is the address the phone listens on, with the actual port.
func (p *Phone) Addr() netip.AddrPort { return p.addr }

// RTPAddr is where the phone's SDP asks for media.
func (p *Phone) RTPAddr() netip.AddrPort {
	return p.rtp.LocalAddr().(*net.UDPAddr).AddrPort()
}

// URI is the phone's Contact: sip:<user>@<host>:<port>.
func (p *Phone) URI() sip.Uri {
	return sip.Uri{Scheme: "sip", User: p.user, Host: p.addr.Addr().String(), Port: int(p.addr.Port())}
}

func (p *Phone) contact() *sip.ContactHeader {
	return &sip.ContactHeader{Address: p.URI()}
}

// Incoming delivers calls to this phone as their INVITEs arrive. When nobody takes them and
// 16 are waiting, further INVITEs are answered 486 Busy Here.
func (p *Phone) Incoming() <-chan *IncomingCall { return p.incoming }

func (p *Phone) register(l *leg) {
	p.mu.Lock()
	p.calls[l.callID] = l
	p.mu.Unlock()
}

func (p *Phone) forget(l *leg) {
	p.mu.Lock()
	if p.calls[l.callID] == l {
		delete(p.calls, l.callID)
	}
	p.mu.Unlock()
}

func (p *Phone) lookup(req *sip.Request) *leg {
	h := req.CallID()
	if h == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[h.Value()]
}

func (p *Phone) routes() {
	p.srv.OnInvite(p.onInvite)
	p.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		if l := p.lookup(req); l != nil {
			l.gotAck()
		}
	})
	p.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if l := p.lookup(req); l != nil {
			l.onBye(req, tx)
			return
		}
		p.respond(tx, sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
	})
	p.srv.OnUpdate(func(req *sip.Request, tx sip.ServerTransaction) {
		if l := p.lookup(req); l != nil {
			l.onRefresh(req, tx)
			return
		}
		p.respond(tx, sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
	})
	// A CANCEL that matches an INVITE in progress is answered by sipgo's transaction layer.
	p.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		p.respond(tx, sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
	})
	p.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
		res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY, MESSAGE"))
		res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
		p.respond(tx, res)
	})
	ok := func(req *sip.Request, tx sip.ServerTransaction) {
		p.respond(tx, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	}
	p.srv.OnInfo(ok)
	p.srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		if l := p.lookup(req); l != nil {
			l.onNotify(req)
		}
		ok(req, tx)
	})
	p.srv.OnMessage(ok)
	p.srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		p.respond(tx, sip.NewResponseFromRequest(req, sip.StatusMethodNotAllowed, "Method Not Allowed", nil))
	})
}

func (p *Phone) respond(tx sip.ServerTransaction, res *sip.Response) {
	if err := tx.Respond(res); err != nil {
		p.log.Debug().Err(err).Int("status", res.StatusCode).Msg("response not sent")
	}
}

func (p *Phone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		if l := p.lookup(req); l != nil {
			l.onRefresh(req, tx)
			return
		}
		p.respond(tx, sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	if req.CallID() == nil || req.From() == nil || req.To() == nil || req.CSeq() == nil {
		p.respond(tx, sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request", nil))
		return
	}
	if l := p.lookup(req); l != nil {
		// Our own call coming back (a phone calling itself), or a Call-ID reused.
		p.respond(tx, sip.NewResponseFromRequest(req, sip.StatusLoopDetected, "Loop Detected", nil))
		return
	}
	ic := newIncomingCall(p, req, tx)
	p.register(&ic.leg)
	if !tx.OnCancel(func(*sip.Request) { ic.end(EndRemoteCancel) }) {
		ic.end(EndRemoteCancel)
		return
	}
	select {
	case p.incoming <- ic:
	default:
		p.log.Warn().Msg("nobody takes incoming calls; answering 486")
		_ = ic.Reject(sip.StatusBusyHere)
		return
	}
	p.log.Debug().Str("call_id", ic.callID).Str("from", ic.From()).Msg("incoming call")
	// sipgo ends an INVITE transaction whose handler returns without a final response, so
	// the handler waits for the test to answer, reject or for the caller to cancel.
	select {
	case <-ic.finalSent:
	case <-ic.done:
	case <-p.closed:
	}
}

// EndCause says how a call ended.
type EndCause string

const (
	EndNone         EndCause = ""              // still going
	EndRemoteBye    EndCause = "remote-bye"    // the other side sent BYE
	EndRemoteCancel EndCause = "remote-cancel" // the caller cancelled before the answer
	EndLocal        EndCause = "local"         // Hangup on this phone
	EndRejected     EndCause = "rejected"      // a non-2xx final response, sent or received
	EndFailed       EndCause = "failed"        // no final response: timeout or transport error
	EndPhoneClosed  EndCause = "phone-closed"  // the phone was closed
)

// leg is the dialog state both directions share: who we are, who they are, where in-dialog
// requests go, and how the call ended.
type leg struct {
	p      *Phone
	callID string

	mu           sync.Mutex
	local        sip.FromHeader // our side, with our tag: From of our in-dialog requests
	remote       sip.ToHeader   // their side, with their tag: To of our in-dialog requests
	remoteTarget sip.Uri
	routeSet     []string
	cseq         uint32
	established  bool
	cause        EndCause

	// referred is closed when a NOTIFY of our REFER reports the transfer's final result;
	// referResult is that sipfrag's status line.
	referred    chan struct{}
	referOnce   sync.Once
	referResult string

	done     chan struct{}
	endOnce  sync.Once
	acked    chan struct{}
	ackOnce  sync.Once
	terminal func() // ends transactions kept for the dialog
}

func (l *leg) init(p *Phone, callID string) {
	l.p, l.callID = p, callID
	l.done, l.acked, l.referred = make(chan struct{}), make(chan struct{}), make(chan struct{})
}

// onNotify takes the NOTIFYs of a REFER (RFC 3515: a message/sipfrag body whose status
// line is the transfer's progress) and keeps the first final one.
func (l *leg) onNotify(req *sip.Request) {
	line, _, _ := strings.Cut(string(req.Body()), "\n")
	line = strings.TrimSpace(line)
	var code int
	if _, err := fmt.Sscanf(line, "SIP/2.0 %d", &code); err != nil || code < 200 {
		return
	}
	l.referOnce.Do(func() {
		l.mu.Lock()
		l.referResult = line
		l.mu.Unlock()
		close(l.referred)
	})
}

// CallID is the call's SIP Call-ID.
func (l *leg) CallID() string { return l.callID }

// Done is closed when the call has ended: the remote hung up (BYE, answered 200) or
// cancelled, this phone hung up or rejected, a final non-2xx arrived, or the phone closed.
func (l *leg) Done() <-chan struct{} { return l.done }

// EndCause says how the call ended; EndNone while it goes on.
func (l *leg) EndCause() EndCause {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cause
}

func (l *leg) end(cause EndCause) {
	l.endOnce.Do(func() {
		l.mu.Lock()
		l.cause = cause
		terminal := l.terminal
		l.mu.Unlock()
		close(l.done)
		l.p.forget(l)
		if terminal != nil {
			terminal()
		}
		l.p.log.Debug().Str("call_id", l.callID).Str("cause", string(cause)).Msg("call ended")
	})
}

func (l *leg) gotAck() {
	l.ackOnce.Do(func() { close(l.acked) })
}

func (l *leg) onBye(req *sip.Request, tx sip.ServerTransaction) {
	l.p.respond(tx, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	l.end(EndRemoteBye)
}

// onRefresh answers a re-INVITE or UPDATE: the session stays as it is.
func (l *leg) onRefresh(req *sip.Request, tx sip.ServerTransaction) {
	var body []byte
	if req.IsInvite() || len(req.Body()) > 0 {
		body = l.p.sdp
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", body)
	res.AppendHeader(l.p.contact())
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	l.p.respond(tx, res)
}

// inDialog builds a request inside the established dialog (RFC 3261 12.2.1.1).
func (l *leg) inDialog(method sip.RequestMethod) (*sip.Request, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.established {
		return nil, errors.New("siptest: no dialog yet")
	}
	l.cseq++
	req := sip.NewRequest(method, *l.remoteTarget.Clone())
	from := l.local
	from.Params = l.local.Params.Clone()
	to := l.remote
	to.Params = l.remote.Params.Clone()
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	callID := sip.CallIDHeader(l.callID)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: l.cseq, MethodName: method})
	for _, r := range l.routeSet {
		req.AppendHeader(sip.NewHeader("Route", r))
	}
	req.AppendHeader(l.p.contact())
	req.SetBody(nil)
	return req, nil
}

// bye sends BYE and waits for its final response; 481 counts as done (the other side has
// already forgotten the call).
func (l *leg) bye(ctx context.Context) error {
	req, err := l.inDialog(sip.BYE)
	if err != nil {
		return err
	}
	res, err := l.p.cli.Do(ctx, req)
	l.end(EndLocal)
	if err != nil {
		return fmt.Errorf("siptest: BYE: %w", err)
	}
	if !res.IsSuccess() && res.StatusCode != sip.StatusCallTransactionDoesNotExists {
		return fmt.Errorf("siptest: BYE answered %d %s", res.StatusCode, res.Reason)
	}
	return nil
}

// waitAck waits for the ACK of our 2xx and retransmits the 2xx meanwhile (RFC 3261 13.3.1.4).
func (l *leg) waitAck(ctx context.Context, resend func()) error {
	interval := sip.T1
	retry := time.NewTimer(interval)
	defer retry.Stop()
	giveUp := time.NewTimer(64 * sip.T1)
	defer giveUp.Stop()
	for {
		select {
		case <-l.acked:
			return nil
		case <-retry.C:
			resend()
			interval = min(2*interval, sip.T2)
			retry.Reset(interval)
		case <-giveUp.C:
			return errors.New("siptest: no ACK for 200 OK")
		case <-l.done:
			return fmt.Errorf("siptest: call ended (%s) before the ACK", l.EndCause())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func staticSDP(ip netip.Addr, rtpPort int) []byte {
	family := "IP4"
	if ip.Is6() {
		family = "IP6"
	}
	session := strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	lines := []string{
		"v=0",
		"o=- " + session + " 1 IN " + family + " " + ip.String(),
		"s=crmlink test phone",
		"c=IN " + family + " " + ip.String(),
		"t=0 0",
		"m=audio " + strconv.Itoa(rtpPort) + " RTP/AVP 0 101",
		"a=rtpmap:0 PCMU/8000",
		"a=rtpmap:101 telephone-event/8000",
		"a=fmtp:101 0-16",
		"a=ptime:20",
		"a=sendrecv",
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

func statusText(code int) string {
	switch code {
	case 180:
		return "Ringing"
	case 183:
		return "Session Progress"
	case 200:
		return "OK"
	case 404:
		return "Not Found"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 488:
		return "Not Acceptable Here"
	case 500:
		return "Server Internal Error"
	case 503:
		return "Service Unavailable"
	case 600:
		return "Busy Everywhere"
	case 603:
		return "Decline"
	}
	switch {
	case code < 200:
		return "Session Progress"
	case code < 300:
		return "OK"
	case code < 400:
		return "Redirect"
	case code < 500:
		return "Request Failure"
	case code < 600:
		return "Server Failure"
	default:
		return "Global Failure"
	}
}

// Refer asks the other side to transfer the call to target, a SIP URI (RFC 3515): a blind
// transfer when target is a number ("sip:102@127.0.0.1:5060"), an attended one when it
// carries Replaces (see Replaces). It returns once the REFER is accepted (202); the PBX
// then ends this call itself (NOTIFY, BYE).
func (l *leg) Refer(ctx context.Context, target string) error {
	req, err := l.inDialog(sip.REFER)
	if err != nil {
		return err
	}
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+target+">"))
	req.AppendHeader(sip.NewHeader("Referred-By", "<"+l.p.contact().Address.String()+">"))
	res, err := l.p.cli.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("siptest: REFER: %w", err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("siptest: REFER answered %d %s", res.StatusCode, res.Reason)
	}
	return nil
}

// WaitTransferred waits for the PBX to report how the transfer asked by Refer ended (its
// final NOTIFY) and fails unless it succeeded; a desk phone hangs up then.
func (l *leg) WaitTransferred(ctx context.Context) error {
	select {
	case <-l.referred:
	case <-ctx.Done():
		return fmt.Errorf("siptest: no final NOTIFY of the transfer: %w", ctx.Err())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !strings.HasPrefix(l.referResult, "SIP/2.0 2") {
		return fmt.Errorf("siptest: transfer failed: %s", l.referResult)
	}
	return nil
}

// Replaces is the target of an attended transfer onto this call: uri with a Replaces
// parameter that names this dialog as the PBX knows it (RFC 3891: to-tag is the PBX's tag,
// from-tag the phone's), escaped for a Refer-To URI.
func (l *leg) Replaces(uri string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.established {
		return "", errors.New("siptest: no dialog yet")
	}
	remote, _ := l.remote.Params.Get("tag")
	local, _ := l.local.Params.Get("tag")
	r := l.callID + ";to-tag=" + remote + ";from-tag=" + local
	return uri + "?Replaces=" + url.QueryEscape(r), nil
}
