package siptest

import (
	"context"
	"errors"
	"sync"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
)

// IncomingCall is a call to the phone, from its INVITE until it ends.
type IncomingCall struct {
	leg
	req      *sip.Request
	tx       sip.ServerTransaction
	localTag string

	fmu       sync.Mutex // orders the responses to the INVITE
	final     bool
	finalSent chan struct{}
}

func newIncomingCall(p *Phone, req *sip.Request, tx sip.ServerTransaction) *IncomingCall {
	ic := &IncomingCall{req: req, tx: tx, localTag: uuid.NewString(), finalSent: make(chan struct{})}
	ic.leg.init(p, req.CallID().Value())
	return ic
}

// Request is the INVITE as received. Treat it as read-only.
func (ic *IncomingCall) Request() *sip.Request { return ic.req }

// From is the caller's user (From header).
func (ic *IncomingCall) From() string { return ic.req.From().Address.User }

// To is the called user (To header).
func (ic *IncomingCall) To() string { return ic.req.To().Address.User }

// RequestURI is the INVITE's request-URI.
func (ic *IncomingCall) RequestURI() sip.Uri { return *ic.req.Recipient.Clone() }

// Header returns the value of the INVITE's first header with that name, or "".
func (ic *IncomingCall) Header(name string) string {
	if h := ic.req.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// response builds a response to the INVITE with this call's To tag.
func (ic *IncomingCall) response(code int, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(ic.req, code, statusText(code), body)
	if code > 100 {
		res.To().Params.Add("tag", ic.localTag)
	}
	if code > 100 && code < 300 {
		res.AppendHeader(ic.p.contact())
	}
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	return res
}

var errFinalSent = errors.New("siptest: the call was already answered or rejected")

// Ringing sends 180 Ringing.
func (ic *IncomingCall) Ringing() error {
	ic.fmu.Lock()
	defer ic.fmu.Unlock()
	if ic.final {
		return errFinalSent
	}
	return ic.tx.Respond(ic.response(sip.StatusRinging, nil))
}

// Answer sends 200 OK with the phone's SDP and waits for the caller's ACK, resending the
// 200 meanwhile. It fails when the caller cancelled first.
func (ic *IncomingCall) Answer(ctx context.Context) error {
	ic.fmu.Lock()
	if ic.final {
		ic.fmu.Unlock()
		return errFinalSent
	}
	res := ic.response(sip.StatusOK, ic.p.sdp)

	// The dialog exists before the 200 leaves, so the ACK and a quick BYE find it.
	ic.leg.mu.Lock()
	ic.local = res.To().AsFrom()
	ic.remote = ic.req.From().AsTo()
	if c := ic.req.Contact(); c != nil {
		ic.remoteTarget = *c.Address.Clone()
	} else {
		ic.remoteTarget = *ic.req.From().Address.Clone()
	}
	ic.routeSet = nil
	for _, h := range ic.req.GetHeaders("Record-Route") {
		ic.routeSet = append(ic.routeSet, h.Value())
	}
	ic.established = true
	ic.terminal = ic.tx.Terminate
	ic.leg.mu.Unlock()

	if err := ic.tx.Respond(res); err != nil {
		ic.fmu.Unlock()
		return err
	}
	ic.final = true
	close(ic.finalSent)
	ic.fmu.Unlock()

	return ic.waitAck(ctx, func() {
		if err := ic.tx.Respond(res); err != nil {
			ic.p.log.Debug().Err(err).Msg("200 OK resend failed")
		}
	})
}

// Reject answers the INVITE with a final non-2xx status (486, 603, …) and ends the call.
func (ic *IncomingCall) Reject(code int) error {
	if code < 300 || code > 699 {
		return errors.New("siptest: reject with a status from 300 to 699")
	}
	ic.fmu.Lock()
	defer ic.fmu.Unlock()
	if ic.final {
		return errFinalSent
	}
	err := ic.tx.Respond(ic.response(code, nil))
	ic.final = true
	close(ic.finalSent)
	ic.end(EndRejected)
	return err
}

// Hangup ends the call: BYE once answered, 603 Decline before.
func (ic *IncomingCall) Hangup(ctx context.Context) error {
	if ic.EndCause() != EndNone {
		return nil
	}
	ic.fmu.Lock()
	final := ic.final
	ic.fmu.Unlock()
	ic.leg.mu.Lock()
	answered := ic.established
	ic.leg.mu.Unlock()
	switch {
	case answered:
		return ic.bye(ctx)
	case final:
		return nil
	default:
		err := ic.Reject(sip.StatusGlobalDecline)
		if errors.Is(err, errFinalSent) {
			return ic.Hangup(ctx) // answered meanwhile
		}
		return err
	}
}
