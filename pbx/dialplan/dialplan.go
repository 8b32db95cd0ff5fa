// Package dialplan is the contract between crmlink and the PBX's dialplan: the names of
// the CRMLINK_* channel variables and X-CRMLINK-* SIP headers, and the values a routing
// decision gives them. The ARI controller, the FastAGI server and the SIP redirect server
// take names and values from here, so the three front ends cannot drift apart; the sample
// dialplan (asterisk-conf/) and the README spell the same names.
package dialplan

import (
	"strconv"
	"strings"

	"github.com/crmlink/crmlink/routing"
)

// Channel variables the dialplan reads after crmlink answered.
const (
	VarResult      = "CRMLINK_RESULT"       // ROUTED or FALLBACK
	VarReason      = "CRMLINK_REASON"       // why the call falls back; empty when routed
	VarOwner       = "CRMLINK_OWNER"        // the owner's CRM user id; empty when there is none
	VarSource      = "CRMLINK_SOURCE"       // index, cache or crm; empty when no owner was found
	VarDial        = "CRMLINK_DIAL"         // FastAGI: the owner's endpoints joined with "&"
	VarRingTimeout = "CRMLINK_RING_TIMEOUT" // FastAGI: seconds Dial() rings the owner
	// VarUserfield is the CDR field the reports read: "crmlink:<reason>", or
	// "crmlink:<result>" when there is no reason (ARI).
	VarUserfield = "CDR(userfield)"
)

// SIP response headers that carry the decision to the proxy or PBX that asked.
const (
	HeaderResult = "X-CRMLINK-Result"
	HeaderReason = "X-CRMLINK-Reason"
	HeaderOwner  = "X-CRMLINK-Owner"
	HeaderSource = "X-CRMLINK-Source"
)

// maxTokenLength bounds a reason or source: they are enum-like, never free text.
const maxTokenLength = 32

// Values is a decision as the dialplan sees it. Every value is safe as a channel variable,
// on an AGI command line and in a SIP header: no CRM data can add a header or a command.
type Values struct {
	Result, Reason, Owner, Source string
	// Dial and RingTimeout are FastAGI's: the phones for Dial() and how long they ring.
	Dial, RingTimeout string
	// Problems lists what was wrong with the decision's data and was dropped, for the log.
	Problems []string
}

// Var is one name and its value: a channel variable or a SIP header.
type Var struct{ Name, Value string }

// Of reduces a decision to the values the dialplan sees: the reason and source must be
// tokens (up to 32 of [A-Za-z0-9._-]) and the owner a positive number, else they are sent
// empty; a result that is neither ROUTED nor FALLBACK falls back. A routed result still
// needs a target the front end can reach: see NoTarget.
func Of(d routing.Decision) Values {
	var v Values
	v.Reason = string(d.Reason)
	if !validToken(v.Reason) {
		v.Problems = append(v.Problems, "reason "+Quote(v.Reason)+" is not a token; sent empty")
		v.Reason = ""
	}
	v.Source = string(d.Source)
	if !validToken(v.Source) {
		v.Problems = append(v.Problems, "source "+Quote(v.Source)+" is not a token; sent empty")
		v.Source = ""
	}
	switch {
	case d.Owner > 0:
		v.Owner = strconv.FormatInt(int64(d.Owner), 10)
	case d.Owner < 0:
		v.Problems = append(v.Problems, "negative owner id; sent empty")
	}
	v.Result = string(routing.Fallback)
	switch d.Result {
	case routing.Routed:
		v.Result = string(routing.Routed)
	case routing.Fallback:
	default:
		v.Problems = append(v.Problems, "result "+Quote(string(d.Result))+" is neither ROUTED nor FALLBACK; falling back")
	}
	return v
}

// NoTarget turns a routed decision none of whose targets the front end can use into the
// fallback with reason no_owner: the dialplan never sees ROUTED with nothing to ring.
func (v *Values) NoTarget() {
	v.Problems = append(v.Problems, "routed without a usable dial target; falling back")
	v.Result, v.Reason = string(routing.Fallback), string(routing.ReasonNoOwner)
}

// Userfield is the CDR userfield: "crmlink:<reason>", or "crmlink:<result>" without one.
func (v Values) Userfield() string {
	if v.Reason != "" {
		return "crmlink:" + v.Reason
	}
	return "crmlink:" + v.Result
}

// ChannelVars are the variables the ARI controller sets on the caller's channel, in one
// request, before it bridges or continues in the fallback context.
func (v Values) ChannelVars() []Var {
	return []Var{
		{VarResult, v.Result},
		{VarReason, v.Reason},
		{VarOwner, v.Owner},
		{VarSource, v.Source},
		{VarUserfield, v.Userfield()},
	}
}

// AGIVars are the variables the FastAGI server sets, in the order it sends them.
// CRMLINK_RESULT comes last so that a half-finished exchange never leaves ROUTED without
// its dial string.
func (v Values) AGIVars() []Var {
	return []Var{
		{VarReason, v.Reason},
		{VarOwner, v.Owner},
		{VarSource, v.Source},
		{VarDial, v.Dial},
		{VarRingTimeout, v.RingTimeout},
		{VarResult, v.Result},
	}
}

// Headers are the headers every answer of the SIP redirect server carries (empty values
// when there is nothing to say).
func (v Values) Headers() []Var {
	return []Var{
		{HeaderResult, v.Result},
		{HeaderReason, v.Reason},
		{HeaderOwner, v.Owner},
		{HeaderSource, v.Source},
	}
}

// validToken accepts the enum-like values (reasons, sources): 0..32 of [A-Za-z0-9._-].
func validToken(s string) bool {
	if len(s) > maxTokenLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// Quote quotes a value from the decision for a log line, cut at 64 bytes and made valid
// UTF-8: it may be anything the CRM holds.
func Quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(strings.ToValidUTF8(s, "?"))
}
