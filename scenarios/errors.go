package scenarios

import (
	"errors"

	"github.com/crmlink/crmlink/events"
)

// ErrPermanent is the event path's one marker, events.ErrPermanent: an error HandleCall
// returns that retrying the same outcome cannot fix, which the event queue dead-letters
// instead of retrying. Test with errors.Is. Every other error HandleCall returns (a CRM or
// State failure) is worth a retry.
var ErrPermanent = events.ErrPermanent

// ErrInvalidOutcome is a call outcome the engine cannot act on (no id, no direction). It is
// permanent. A withheld or unparseable client number is not an error: such a call creates
// nothing (Result.Reasons says why).
var ErrInvalidOutcome = Permanent(errors.New("invalid call outcome"))

// Permanent is events.Permanent, the engine's way of marking its errors.
func Permanent(err error) error { return events.Permanent(err) }
