package events

import (
	"fmt"
	"time"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
)

// PhoneKey is the order key of everything about the client with this number: a client's
// calls and chats meet on it, so a call's note and the chat that follows reach the CRM in
// that order.
func PhoneKey(p crm.Phone) string { return "phone:" + string(p) }

// CallOutcomes is the type of finished calls. The order key is the client's number (the
// caller on an incoming call, the number called on an outgoing one) read with phones, so
// the calls of one client reach the CRM one after the other and a second missed call sees
// the first one's task; a number that does not parse (an internal extension) is its own
// key, and a withheld one has none.
func CallOutcomes(phones *crm.PhoneMemo) Type[routing.CallOutcome] {
	return Type[routing.CallOutcome]{
		Kind: KindCallOutcome,
		ID:   func(o routing.CallOutcome) string { return o.ID },
		Key: func(o routing.CallOutcome) string {
			number := o.Caller
			if o.Direction == routing.Outgoing {
				number = o.Called
			}
			if number == "" {
				return ""
			}
			if p, err := phones.Parse(number); err == nil {
				return PhoneKey(p)
			}
			return "number:" + number
		},
	}
}

// CRMChange is the payload of a KindCRMChange event: a crm.ResponsibleChange with stable
// JSON names (convert with crm.ResponsibleChange(c) and CRMChange(ch)).
type CRMChange struct {
	Entity         crm.EntityType `json:"entity"`
	ID             int64          `json:"id"`
	Responsible    crm.UserID     `json:"responsible"`
	OldResponsible crm.UserID     `json:"old_responsible,omitempty"`
	ModifiedBy     crm.UserID     `json:"modified_by,omitempty"`
	At             time.Time      `json:"at,omitzero"`
}

// CRMChanges is the type of responsible changes amoCRM reported. The ID names the entity,
// the new responsible and the time, so a webhook delivered twice is one event. They have
// no order key: the sync orders them by their time itself.
var CRMChanges = Type[CRMChange]{
	Kind: KindCRMChange,
	ID: func(c CRMChange) string {
		return fmt.Sprintf("crm:%s:%d:%d:%d", c.Entity, c.ID, c.Responsible, c.At.UnixMilli())
	},
	Check: func(c CRMChange) error {
		if c.Entity == "" || c.ID <= 0 {
			return fmt.Errorf("a responsible change needs an entity and a positive id (got %q %d)", c.Entity, c.ID)
		}
		return nil
	},
}
