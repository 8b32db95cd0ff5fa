package routing

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// CallOutcome is how a call through the PBX ended, as the rules engine needs it to create
// CRM records. ID (the Asterisk linkedid) is the idempotency key downstream: an outcome
// delivered twice creates nothing twice.
type CallOutcome struct {
	ID string `json:"id"`
	// Asterisk is the Asterisk the call was on (its entity id, asterisk_id in ARI events)
	// when crmlink serves several over their outbound websockets; empty otherwise.
	Asterisk  string    `json:"asterisk,omitempty"`
	Direction Direction `json:"direction"`
	Caller    string    `json:"caller"`   // the client's number on incoming calls
	Called    string    `json:"called"`   // the dialled number (a DID, or the client's on outgoing)
	Answered  bool      `json:"answered"` // somebody talked to the client
	// AnsweredBy is the CRM user who took the call (0: nobody, or not a mapped manager).
	AnsweredBy crm.UserID `json:"answered_by,omitempty"`
	// FirstOperator is the first manager whose phone rang ("first operator on the line").
	FirstOperator crm.UserID `json:"first_operator,omitempty"`
	// Manager is the office user who placed an outgoing call.
	Manager      crm.UserID    `json:"manager,omitempty"`
	Start        time.Time     `json:"start"`
	RingDuration time.Duration `json:"ring_duration_ns"`
	TalkDuration time.Duration `json:"talk_duration_ns"`
	// Decision is the routing decision of an incoming call (zero on outgoing calls).
	Decision Decision `json:"decision"`
	// RecordingURL links the call recording when one is configured.
	RecordingURL string `json:"recording_url,omitempty"`
	// Talkers are everyone on the office side who talked to the client, in the order they
	// answered: a queue member, then whoever a transfer passed the call to. AnsweredBy is
	// the one of them the configuration credits (asterisk.observer.credit).
	Talkers []Talker `json:"talkers,omitempty"`
}

// Talker is one office phone that talked to the client on a call.
type Talker struct {
	Endpoint string        `json:"endpoint"`       // PJSIP/101
	User     crm.UserID    `json:"user,omitempty"` // its manager; 0 for an office phone of no manager's
	Name     string        `json:"name,omitempty"` // the manager's name
	Talk     time.Duration `json:"talk_ns"`
}

// TalkSummary names everyone who talked on the call and for how long, in order, e.g.
// "Talked: Anna 0:42, Boris 3:05"; "" when nobody did. Call notes show it.
func (o CallOutcome) TalkSummary() string {
	if len(o.Talkers) == 0 {
		return ""
	}
	parts := make([]string, len(o.Talkers))
	for i, t := range o.Talkers {
		who := t.Name
		if who == "" {
			who = t.Endpoint
		}
		s := int(t.Talk.Round(time.Second) / time.Second)
		parts[i] = fmt.Sprintf("%s %d:%02d", who, s/60, s%60)
	}
	return "Talked: " + strings.Join(parts, ", ")
}

// Direction of a call, seen from the office.
type Direction string

const (
	Incoming Direction = "incoming"
	Outgoing Direction = "outgoing"
)

// withheldCallerIDs are the caller ids PBXes and carriers put in place of a withheld number.
var withheldCallerIDs = []string{"anonymous", "unknown", "private", "restricted", "withheld", "unavailable"}

// Withheld reports whether a caller id carries no number: empty, or a word PBXes and
// carriers use for a withheld number ("anonymous", "Restricted", ...).
func Withheld(callerID string) bool {
	id := strings.ToLower(strings.TrimSpace(callerID))
	return id == "" || slices.Contains(withheldCallerIDs, id)
}
