// Package routing answers, while a call is being set up, who the caller's personal manager
// is and whether that manager can take the call now: Router.Decide returns a Decision value
// (dial targets, or the fallback with its reason) within the lookup timeout.
package routing

import (
	"context"
	"encoding/json"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// Result is the outcome the dialplan sees in CRMLINK_RESULT.
type Result string

const (
	Routed   Result = "ROUTED"
	Fallback Result = "FALLBACK"
)

// Reason says why a call went to the fallback ("linked operation"); CRMLINK_REASON.
type Reason string

const (
	ReasonNone             Reason = ""
	ReasonTimeout          Reason = "timeout"           // the CRM did not answer within lookup_timeout
	ReasonNotFound         Reason = "not_found"         // no contact has this number
	ReasonNoOwner          Reason = "no_owner"          // found, but no responsible user or no phones mapped to them
	ReasonOwnerUnavailable Reason = "owner_unavailable" // off schedule, phones offline or set unavailable
	ReasonOwnerNoAnswer    Reason = "owner_no_answer"   // the owner's phones rang out, were busy or failed
	ReasonCRMError         Reason = "crm_error"         // the CRM answered with an error (401, 403, 429, 5xx)
	ReasonDisabled         Reason = "disabled"          // routing is switched off or the caller is anonymous
	ReasonInterrupted      Reason = "interrupted"       // answered for the owner, but crmlink stopped or lost Asterisk before connecting them
)

// Source says where the owner came from; CRMLINK_SOURCE.
type Source string

const (
	SourceNone  Source = ""
	SourceIndex Source = "index" // learnt from a CRM webhook
	SourceCache Source = "cache" // an earlier lookup, within its TTL
	SourceCRM   Source = "crm"   // a live CRM request during this call
)

// Call is what a PBX front end knows about a call when it asks for a decision.
type Call struct {
	// Caller is the caller's number as the PBX got it (CALLERID(num)); normalised by Decide.
	Caller string
	// Called is the dialled number (DNID / EXTEN), for logs and conditions.
	Called string
	// ChannelID and LinkedID identify the call in Asterisk, for logs.
	ChannelID string
	LinkedID  string
	// Asterisk is the Asterisk the call is on, when the front end knows it: its entity id
	// (asterisk_id of the ARI connection Asterisk opened to crmlink) or its system name
	// (SystemName of a FastAGI call's channel id). Phone presence is asked of that
	// Asterisk, whose phones ring. Empty otherwise.
	Asterisk string
	// Inquiry marks a decision asked outside a call (GET /v1/route): answered the same
	// way, but a cold lookup for it uses Options.InquiryDirectory and is paced, so that
	// questions over HTTP never take the amoCRM budget a ringing call needs.
	Inquiry bool
}

// Target is one endpoint to ring, as an Asterisk dial string ("PJSIP/101").
type Target struct {
	Endpoint string `json:"endpoint"`
}

// Step is one stage of a decision with its duration, for `crmlink route` and logs.
type Step struct {
	Name     string        `json:"name"`
	Detail   string        `json:"detail,omitempty"`
	Duration time.Duration `json:"-"`
}

// MarshalJSON writes the duration in milliseconds, as a person reads it.
func (s Step) MarshalJSON() ([]byte, error) {
	type plain Step
	return json.Marshal(struct {
		plain
		DurationMS float64 `json:"duration_ms"`
	}{plain(s), millis(s.Duration)})
}

// Decision is the answer for one call: either targets to ring at once, or the fallback
// with a reason. It is a value, never an error: every failure maps to a Reason.
type Decision struct {
	Result  Result     `json:"result"`
	Reason  Reason     `json:"reason,omitempty"`
	Owner   crm.UserID `json:"owner,omitempty"`
	Source  Source     `json:"source,omitempty"`
	Phone   crm.Phone  `json:"phone,omitempty"`
	Targets []Target   `json:"targets,omitempty"`
	// Client is what the lookup found (nil: no lookup answered), carried to the call
	// scenarios in the CallOutcome so that they need not ask the CRM again.
	Client  *Client       `json:"client,omitempty"`
	Latency time.Duration `json:"-"`
	Steps   []Step        `json:"steps,omitempty"`
}

// MarshalJSON writes the latency in milliseconds: `crmlink route` and GET /v1/route print
// exactly this.
func (d Decision) MarshalJSON() ([]byte, error) {
	type plain Decision
	return json.Marshal(struct {
		plain
		LatencyMS float64 `json:"latency_ms"`
	}{plain(d), millis(d.Latency)})
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Decider is what every PBX front end (ARI, FastAGI, SIP redirect, HTTP) asks.
// Decide must return within the configured lookup timeout whatever the CRM does.
type Decider interface {
	Decide(ctx context.Context, call Call) Decision
}

// DeciderFunc adapts a function to Decider.
type DeciderFunc func(ctx context.Context, call Call) Decision

// Decide calls f.
func (f DeciderFunc) Decide(ctx context.Context, call Call) Decision { return f(ctx, call) }

// FallbackDecision builds a fallback decision with a reason.
func FallbackDecision(reason Reason) Decision {
	return Decision{Result: Fallback, Reason: reason}
}
