// Package sip is crmlink's SIP redirect front end: it answers an INVITE with a 302 to the
// caller's personal manager, or with the fallback, and never carries a call itself.
// (The test phone for end-to-end tests lives in pbx/sip/siptest.)
//
// # Answers
//
//	routed     302 Moved Temporarily, one Contact per dial target, q=1.0, 0.9, … in the
//	           decision's order; the user is the target's resource ("PJSIP/101" → 101,
//	           "PJSIP/79161234567@trunk" → 79161234567) put into the contact template
//	fallback   302 to the fallback contact when one is configured, else 480 Temporarily
//	           Unavailable
//	always     X-CRMLINK-Result, X-CRMLINK-Reason, X-CRMLINK-Owner, X-CRMLINK-Source
//	           (empty values when there is nothing to say; pbx/dialplan's contract)
//	OPTIONS    200 OK (qualify / keepalive)
//	other      481 for CANCEL, BYE or re-INVITE without a transaction; 405 for known
//	           methods we do not serve; 501 for unknown ones
//	outside    nothing: a datagram or TCP connection from outside the allowed networks
//	           (loopback by default) is dropped before it is parsed, so a forged source
//	           cannot make the listener reflect or amplify; one warning per 10 s
//
// CRM-derived values are checked before they reach a header or URI: users are 1–64 of
// [A-Za-z0-9._-+], reason and source 0–32 of [A-Za-z0-9._-], the owner is a number. A target
// that fails is dropped and logged; when none is left the call gets the fallback with reason
// no_owner, so a CR/LF in CRM data can never add a header. sipgo v1.7.2 does not validate
// header values itself.
//
// # Asterisk
//
// Asterisk asks crmlink by dialling it. With the endpoint's redirect_method=user (the
// default) Dial() follows the 302 by calling Local/<Contact user>@<context>, where
// <context> is FORWARD_CONTEXT read on the outgoing channel (so it must be set inherited,
// __FORWARD_CONTEXT; not tried on the rig) or else the crmlink endpoint's own context=
// (simplest, below).
// Asterisk follows only the first (highest q) Contact, so with this front end the
// manager's first phone rings; use the AGI or ARI front end to ring all of them at once.
// A 480 makes Dial() return, and the dialplan continues to its fallback; the reason is in
// crmlink's log (Asterisk does not expose a 3xx/4xx's headers to the dialplan after Dial()).
// Checked against the rig's Asterisk 22: the 302 to sip:101@… rang PJSIP/101 through
// Local/101@<endpoint context>.
//
// pjsip.conf:
//
//	[crmlink-redirect]
//	type=aor
//	contact=sip:127.0.0.1:5070
//	qualify_frequency=30          ; OPTIONS keepalive; crmlink answers 200
//
//	[crmlink-redirect]
//	type=endpoint
//	transport=transport-udp
//	aors=crmlink-redirect
//	context=crmlink-owner         ; where Dial() follows crmlink's 302 (Local/<user>@crmlink-owner)
//	redirect_method=user          ; the default, spelled out
//	disallow=all
//	allow=ulaw,alaw
//
// extensions.conf:
//
//	[from-trunk]
//	exten => _X.,1,Dial(PJSIP/${EXTEN}@crmlink-redirect,20)
//	 same => n,GotoIf($["${DIALSTATUS}"="ANSWER"]?done)
//	 same => n,Goto(crmlink-fallback,${EXTEN},1)   ; 480, crmlink down, or no answer
//	 same => n(done),Hangup()
//
//	[crmlink-owner]
//	; Dial() lands here after crmlink's 302, with the owner's extension or number as EXTEN.
//	exten => _X.,1,Dial(PJSIP/${EXTEN},20)
//
// The INVITE's request-URI user is the called number, the From user the caller: that is
// what the decision is made on.
//
// # Timing
//
// Each INVITE is handled in its own goroutine (sipgo's transaction layer), so a slow
// decision delays only its own call; sipgo sends 100 Trying by itself after 200 ms without
// a response. The decision is bounded by WithDecideTimeout; a CANCEL from the caller ends
// the wait (sipgo answers it 200 and the INVITE 487). On shutdown new INVITEs get 503 and
// decisions in progress are answered before the socket closes.
package sip
