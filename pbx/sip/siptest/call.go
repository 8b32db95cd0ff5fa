package siptest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
)

// Call is a call placed by the phone, from its INVITE until it ends.
type Call struct {
	leg
	invite *sip.Request
	tx     sip.ClientTransaction

	rmu          sync.Mutex
	provisionals []int
	progress     chan struct{} // closed and replaced at each provisional response
	final        *sip.Response
	finalCh      chan struct{}
	txErr        error
	ack          *sip.Request
	cancelSent   bool
}

// Response is the final answer to a call.
type Response struct {
	StatusCode int
	Reason     string
	// Contacts are the response's Contact headers in order (a 302's redirect targets with their q).
	Contacts []sip.ContactHeader
	Msg      *sip.Response
}

// Header returns the value of the response's first header with that name, or "".
func (r *Response) Header(name string) string {
	if h := r.Msg.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

func newResponse(res *sip.Response) *Response {
	r := &Response{StatusCode: res.StatusCode, Reason: res.Reason, Msg: res}
	for _, h := range res.GetHeaders("Contact") {
		if c, ok := h.(*sip.ContactHeader); ok {
			r.Contacts = append(r.Contacts, *c.Clone())
			continue
		}
		var c sip.ContactHeader
		if name, err := sip.ParseAddressValue(h.Value(), &c.Address, &c.Params); err == nil {
			c.DisplayName = name
			r.Contacts = append(r.Contacts, c)
		}
	}
	return r
}

// Call sends an INVITE with the phone's SDP offer to target, e.g. "sip:200@127.0.0.1:5060".
// headers are added to the INVITE; a *sip.FromHeader, *sip.ToHeader or *sip.CallIDHeader
// among them replaces the phone's own (a From tag is added when missing), which lets one
// phone call with several caller numbers.
func (p *Phone) Call(ctx context.Context, target string, headers ...sip.Header) (*Call, error) {
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil || (uri.Scheme != "sip" && uri.Scheme != "sips") || uri.Host == "" {
		return nil, fmt.Errorf("siptest: call target %q is not a SIP URI like sip:200@127.0.0.1:5060", target)
	}
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.user, Host: p.addr.Addr().String()}}
	to := &sip.ToHeader{Address: sip.Uri{Scheme: uri.Scheme, User: uri.User, Host: uri.Host, Port: uri.Port}}
	callID := sip.CallIDHeader(uuid.NewString())
	var extra []sip.Header
	for _, h := range headers {
		switch h := h.(type) {
		case *sip.FromHeader:
			from = cloneFrom(h)
		case *sip.ToHeader:
			to = sip.HeaderClone(h).(*sip.ToHeader)
		case *sip.CallIDHeader:
			callID = *h
		default:
			switch strings.ToLower(h.Name()) {
			case "from", "to", "call-id", "cseq", "via", "contact", "content-type", "content-length", "max-forwards":
				return nil, fmt.Errorf("siptest: the phone sets %s itself (From, To and Call-ID may be passed as typed headers)", h.Name())
			}
			extra = append(extra, h)
		}
	}
	if !from.Params.Has("tag") {
		from.Params.Add("tag", uuid.NewString())
	}

	req := sip.NewRequest(sip.INVITE, uri)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	req.AppendHeader(p.contact())
	for _, h := range extra {
		req.AppendHeader(h)
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(p.sdp)

	c := &Call{invite: req, progress: make(chan struct{}), finalCh: make(chan struct{})}
	c.leg.init(p, string(callID))
	c.local = *cloneFrom(from)
	c.cseq = 1

	p.mu.Lock()
	select {
	case <-p.closed:
		p.mu.Unlock()
		return nil, errors.New("siptest: phone closed")
	default:
	}
	p.calls[c.callID] = &c.leg
	p.wg.Add(1)
	p.mu.Unlock()

	tx, err := p.cli.TransactionRequest(ctx, req)
	if err != nil {
		p.wg.Done()
		p.forget(&c.leg)
		return nil, fmt.Errorf("siptest: INVITE: %w", err)
	}
	c.tx = tx
	tx.OnRetransmission(func(res *sip.Response) {
		if res.IsSuccess() {
			c.resendAck()
		}
	})
	go c.readResponses()
	p.log.Debug().Str("call_id", c.callID).Str("to", target).Msg("calling")
	return c, nil
}

func cloneFrom(h *sip.FromHeader) *sip.FromHeader {
	return sip.HeaderClone(h).(*sip.FromHeader)
}

// Send sends one request outside any call (OPTIONS, or whatever a test needs) and returns
// its final response.
func (p *Phone) Send(ctx context.Context, method sip.RequestMethod, target string, headers ...sip.Header) (*Response, error) {
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil || (uri.Scheme != "sip" && uri.Scheme != "sips") || uri.Host == "" {
		return nil, fmt.Errorf("siptest: target %q is not a SIP URI like sip:127.0.0.1:5060", target)
	}
	req := sip.NewRequest(method, uri)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.user, Host: p.addr.Addr().String()}}
	from.Params.Add("tag", uuid.NewString())
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: uri.Scheme, User: uri.User, Host: uri.Host, Port: uri.Port}})
	req.AppendHeader(p.contact())
	for _, h := range headers {
		req.AppendHeader(h)
	}
	req.SetBody(nil)
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("siptest: %s: %w", method, err)
	}
	return newResponse(res), nil
}

// Options sends OPTIONS, e.g. to see that Asterisk or crmlink is up.
func (p *Phone) Options(ctx context.Context, target string) (*Response, error) {
	return p.Send(ctx, sip.OPTIONS, target)
}

// Request is the INVITE as sent. Treat it as read-only.
func (c *Call) Request() *sip.Request { return c.invite }

func (c *Call) readResponses() {
	defer c.p.wg.Done()
	for {
		select {
		case res := <-c.tx.Responses():
			c.onResponse(res)
		case <-c.tx.Done():
			c.onTxDone()
			return
		case <-c.p.closed:
			return
		}
	}
}

func (c *Call) onResponse(res *sip.Response) {
	c.rmu.Lock()
	if res.IsProvisional() {
		c.provisionals = append(c.provisionals, res.StatusCode)
		close(c.progress)
		c.progress = make(chan struct{})
		c.rmu.Unlock()
		return
	}
	if c.final != nil {
		c.rmu.Unlock()
		return
	}
	c.final = res
	if res.IsSuccess() {
		c.establish(res)
		// ACK at once, as a phone does; Ack only checks.
		c.ack = c.ackFor(res)
		if err := c.p.cli.WriteRequest(c.ack); err != nil {
			c.p.log.Warn().Err(err).Str("call_id", c.callID).Msg("ACK not sent")
		}
		c.ack = c.ack.Clone() // a settled copy for resends
	}
	cause := EndRejected
	if c.cancelSent {
		cause = EndLocal // the 487 to our CANCEL
	}
	close(c.finalCh)
	c.rmu.Unlock()
	if !res.IsSuccess() {
		// The transaction layer ACKs non-2xx finals and absorbs their retransmissions.
		c.end(cause)
	}
}

func (c *Call) onTxDone() {
	c.rmu.Lock()
	if c.final != nil {
		c.rmu.Unlock()
		return
	}
	c.txErr = c.tx.Err()
	if c.txErr == nil {
		c.txErr = errors.New("siptest: INVITE transaction ended without a final response")
	}
	close(c.finalCh)
	c.rmu.Unlock()
	c.end(EndFailed)
}

// establish records the dialog from a 2xx (RFC 3261 12.1.2).
func (c *Call) establish(res *sip.Response) {
	c.leg.mu.Lock()
	defer c.leg.mu.Unlock()
	c.remote = *sip.HeaderClone(res.To()).(*sip.ToHeader)
	if ct := res.Contact(); ct != nil {
		c.remoteTarget = *ct.Address.Clone()
	} else {
		c.remoteTarget = *c.invite.Recipient.Clone()
	}
	c.routeSet = nil
	for _, h := range res.GetHeaders("Record-Route") {
		c.routeSet = append(c.routeSet, h.Value())
	}
	slices.Reverse(c.routeSet)
	c.established = true
	c.terminal = c.tx.Terminate
}

// ackFor builds the ACK for a 2xx (RFC 3261 13.2.2.4); sipgo adds Via and Max-Forwards.
func (c *Call) ackFor(res *sip.Response) *sip.Request {
	c.leg.mu.Lock()
	defer c.leg.mu.Unlock()
	ack := sip.NewRequest(sip.ACK, *c.remoteTarget.Clone())
	ack.AppendHeader(cloneFrom(c.invite.From()))
	ack.AppendHeader(sip.HeaderClone(res.To()))
	ack.AppendHeader(sip.HeaderClone(c.invite.CallID()))
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: c.invite.CSeq().SeqNo, MethodName: sip.ACK})
	for _, r := range c.routeSet {
		ack.AppendHeader(sip.NewHeader("Route", r))
	}
	ack.SetBody(nil)
	return ack
}

func (c *Call) resendAck() {
	c.rmu.Lock()
	var ack *sip.Request
	if c.ack != nil {
		ack = c.ack.Clone()
	}
	c.rmu.Unlock()
	if ack != nil {
		if err := c.p.cli.WriteRequest(ack); err != nil {
			c.p.log.Debug().Err(err).Msg("ACK resend failed")
		}
	}
}

// WaitProvisional waits for a provisional response with the code (180, 183; 0 for any,
// including 100 Trying). It fails when the final response comes first.
func (c *Call) WaitProvisional(ctx context.Context, code int) error {
	for {
		c.rmu.Lock()
		if slices.ContainsFunc(c.provisionals, func(got int) bool { return code == 0 || got == code }) {
			c.rmu.Unlock()
			return nil
		}
		if c.final != nil {
			status := c.final.StatusCode
			c.rmu.Unlock()
			return fmt.Errorf("siptest: final %d before provisional %d", status, code)
		}
		progress, finalCh := c.progress, c.finalCh
		c.rmu.Unlock()
		select {
		case <-progress:
		case <-finalCh:
		case <-c.done:
			return fmt.Errorf("siptest: call ended (%s) before provisional %d", c.EndCause(), code)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Provisionals lists the provisional status codes received so far.
func (c *Call) Provisionals() []int {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return slices.Clone(c.provisionals)
}

// WaitAnswer waits for the final response: 200 (already ACKed), a redirect with its
// Contacts, or a failure. A non-2xx answer is a Response, not an error; errors are timeouts,
// transport failures and ctx.
func (c *Call) WaitAnswer(ctx context.Context) (*Response, error) {
	select {
	case <-c.finalCh:
	case <-c.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.rmu.Lock()
	final, txErr := c.final, c.txErr
	c.rmu.Unlock()
	if final == nil {
		if txErr == nil {
			txErr = fmt.Errorf("siptest: call ended (%s) without an answer", c.EndCause())
		}
		return nil, txErr
	}
	return newResponse(final), nil
}

// Ack checks that the final response is acknowledged. The phone ACKs a 2xx as soon as it
// arrives (and again if the 2xx is resent); sipgo ACKs any other final response.
func (c *Call) Ack(ctx context.Context) error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.final == nil {
		return errors.New("siptest: no final response to acknowledge yet")
	}
	return nil
}

// Hangup ends the call: CANCEL before the answer (after the first provisional response, as
// RFC 3261 requires, then waiting for the 487), BYE after a 2xx, nothing after a failure.
func (c *Call) Hangup(ctx context.Context) error {
	if cause := c.EndCause(); cause != EndNone {
		return nil
	}
	c.rmu.Lock()
	final := c.final
	c.rmu.Unlock()
	if final == nil {
		if err := c.cancel(ctx); err != nil {
			return err
		}
		c.rmu.Lock()
		final = c.final
		c.rmu.Unlock()
		if final == nil || !final.IsSuccess() {
			c.end(EndLocal)
			return nil
		}
		// A 2xx crossed our CANCEL: the call is up, so it needs a BYE.
	}
	if final.IsSuccess() {
		return c.bye(ctx)
	}
	return nil
}

func (c *Call) cancel(ctx context.Context) error {
	for {
		c.rmu.Lock()
		got, final, progress := len(c.provisionals), c.final, c.progress
		c.rmu.Unlock()
		if final != nil {
			return nil
		}
		if got > 0 {
			break
		}
		select {
		case <-progress:
		case <-c.finalCh:
		case <-c.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	req := sip.NewRequest(sip.CANCEL, *c.invite.Recipient.Clone())
	req.AppendHeader(sip.HeaderClone(c.invite.Via())) // must match the INVITE's branch
	req.AppendHeader(cloneFrom(c.invite.From()))
	req.AppendHeader(sip.HeaderClone(c.invite.To()))
	req.AppendHeader(sip.HeaderClone(c.invite.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: c.invite.CSeq().SeqNo, MethodName: sip.CANCEL})
	for _, r := range c.invite.GetHeaders("Route") {
		req.AppendHeader(sip.HeaderClone(r))
	}
	req.SetBody(nil)
	c.rmu.Lock()
	c.cancelSent = true
	c.rmu.Unlock()
	res, err := c.p.cli.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("siptest: CANCEL: %w", err)
	}
	if !res.IsSuccess() && res.StatusCode != sip.StatusCallTransactionDoesNotExists {
		return fmt.Errorf("siptest: CANCEL answered %d %s", res.StatusCode, res.Reason)
	}
	select {
	case <-c.finalCh: // 487, or a 2xx that crossed the CANCEL
	case <-c.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
