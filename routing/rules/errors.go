package rules

import "errors"

// ErrPermanent marks an error that retrying the same outcome cannot fix: the event queue
// should dead-letter the outcome instead of retrying it. Test with errors.Is. Every other
// error HandleCall returns (a CRM or State failure) is worth a retry.
var ErrPermanent = errors.New("permanent")

// ErrInvalidOutcome is a call outcome the engine cannot act on (no id, no direction). It is
// permanent. A withheld or unparseable client number is not an error: such a call creates
// nothing (Result.Reasons says why).
var ErrInvalidOutcome = Permanent(errors.New("invalid call outcome"))

// Permanent marks err as permanent (nil stays nil).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (e permanentError) Error() string        { return e.err.Error() }
func (e permanentError) Unwrap() error        { return e.err }
func (e permanentError) Is(target error) bool { return target == ErrPermanent }
