// Package agi is crmlink's FastAGI front end: it answers Asterisk's AGI(agi://…/route)
// with the routing decision for the call, set as channel variables, and nothing else.
//
// # Dialplan
//
// The dialplan asks once per inbound call and branches on the answer. The linkedid is
// passed as the first AGI argument so that crmlink's logs can be joined with CDR/CEL:
//
//	[from-trunk]
//	exten => _X.,1,AGI(agi://127.0.0.1:4573/route,${CHANNEL(linkedid)})
//	 same => n,GotoIf($["${AGISTATUS}"!="SUCCESS"]?crmlink-fallback,${EXTEN},1)
//	 same => n,GotoIf($["${CRMLINK_RESULT}"!="ROUTED"]?crmlink-fallback,${EXTEN},1)
//	 same => n,Dial(${CRMLINK_DIAL},${CRMLINK_RING_TIMEOUT})
//	 same => n,GotoIf($["${DIALSTATUS}"="ANSWER"]?done)
//	 same => n,Set(CRMLINK_RESULT=FALLBACK)
//	 same => n,Set(CRMLINK_REASON=owner_no_answer)
//	 same => n,Goto(crmlink-fallback,${EXTEN},1)
//	 same => n(done),Hangup()
//
//	[crmlink-fallback]
//	exten => _X.,1,NoOp(crmlink fallback: ${CRMLINK_REASON})
//	 same => n,Queue(sales)
//
// AGISTATUS is FAILURE when crmlink is down or refuses the connection: that call goes to the
// fallback without waiting. The DIALSTATUS check matters: after an answered Dial the dialplan
// continues at the next priority when the manager hangs up, and that call was not missed.
//
// # Variables
//
// For the script "route" crmlink always sets all six variables (names and values are the
// dialplan contract of pbx/dialplan, shared with ARI and the SIP headers), so a value left
// on the channel by an earlier AGI call is never mistaken for this call's answer:
//
//	CRMLINK_RESULT        ROUTED or FALLBACK (set last: if the exchange breaks half way,
//	                      the dialplan does not see ROUTED without a dial string)
//	CRMLINK_REASON        why the call falls back (timeout, not_found, no_owner, …); empty when routed
//	CRMLINK_OWNER         the owner's CRM user id; empty when there is none
//	CRMLINK_SOURCE        index, cache or crm; empty when no owner was found
//	CRMLINK_DIAL          the owner's endpoints joined with "&" (PJSIP/101&PJSIP/102); empty on fallback
//	CRMLINK_RING_TIMEOUT  seconds to ring the owner (WithRingTimeout)
//
// Every value is checked before it is sent: dial targets must look like Tech/resource and
// may hold only letters, digits and ._-+@:*#/ (no spaces, quotes, commas or "&"), so CRM
// data can neither break the AGI command nor smuggle options into Dial(). A target that
// fails the check is dropped and logged; when none is left the call falls back with
// reason no_owner.
//
// Any other script name (agi://…/foo) is logged and answered with no variables at all: the
// dialplan's CRMLINK_RESULT check then sends the call to the fallback, and the log says
// which dialplan line is wrong.
//
// # Timing
//
// Each connection has one deadline for the whole exchange (WithTimeout, 5 s by default),
// set before the first byte is read, so a peer that connects and sends nothing holds only
// its own goroutine. The decision gets the deadline minus a reserve for the replies; set
// WithTimeout above the router's lookup_timeout. On shutdown the listener closes at once
// and calls already connected finish within their deadline.
package agi
