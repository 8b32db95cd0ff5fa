package events

import (
	"errors"
	"net/http"

	"github.com/crmlink/crmlink/crm"
)

// Class is what becomes of an event whose handler returned an error.
type Class int

const (
	// Done: the handler succeeded (a nil error).
	Done Class = iota
	// Retry: the failure can pass (a CRM or chat platform down, rate limited, refusing
	// the credentials, a network error, a timeout): the queue retries with backoff until
	// its horizon (queue.retry_for), then dead-letters the event.
	Retry
	// DeadLetter: retrying sends the same request again and cannot succeed (a payload no
	// handler can read, data the CRM or the chat platform refused as invalid): the event
	// goes to the dead-letter list at once, for an operator to look at and replay.
	DeadLetter
	// Drop: the event is acknowledged without action on purpose (a feature that is off);
	// the dispatcher logs why.
	Drop
)

func (c Class) String() string {
	switch c {
	case Done:
		return "done"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead_letter"
	case Drop:
		return "drop"
	}
	return "unknown"
}

// ErrPermanent is what errors.Is finds in an error marked by Permanent.
var ErrPermanent = errors.New("permanent")

// Permanent marks err as one no retry can fix: the event goes to the dead-letter list
// (nil stays nil). The message is err's own.
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

// Dropped is a handler's way of saying the event needs no action, on purpose: the
// dispatcher logs why and acknowledges it.
func Dropped(why string) error { return dropError{why} }

type dropError struct{ why string }

func (e dropError) Error() string { return "dropped: " + e.why }

// StatusCoder is an error carrying the HTTP status a platform answered (amoCRM's
// *amocrm.ValidationError, the chat platforms' *apiclient.StatusError).
type StatusCoder interface{ HTTPStatus() int }

// ClassOfStatus is what an answer with this HTTP status makes of an event, the same for
// amoCRM and the chat platforms: a validation refusal (400, 422) is the same refusal next
// time; anything else non-2xx (401, 403, 404, 429, 5xx) can pass.
func ClassOfStatus(status int) Class {
	switch {
	case status >= 200 && status < 300:
		return Done
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		return DeadLetter
	}
	return Retry
}

// Classify says what becomes of an event whose handler returned err. The outermost
// verdict in err's chain counts: Dropped, Permanent, an HTTP status (ClassOfStatus), or
// crm.ErrRejected (a CRM refusal without a status, as fakes report it); anything else is
// worth a retry. Of errors joined together (several writes that failed), the event is
// retried when any of them is worth a retry: a retry repeats only what failed.
func Classify(err error) Class {
	if err == nil {
		return Done
	}
	switch e := err.(type) {
	case dropError:
		return Drop
	case permanentError:
		return DeadLetter
	case StatusCoder:
		if ClassOfStatus(e.HTTPStatus()) == DeadLetter {
			return DeadLetter
		}
		return Retry
	case interface{ Unwrap() []error }:
		verdict := Done
		for _, part := range e.Unwrap() {
			switch c := Classify(part); {
			case c == Retry:
				return Retry
			case c == DeadLetter || verdict == Done:
				verdict = c
			}
		}
		if verdict == Done {
			return Retry
		}
		return verdict
	}
	if err == crm.ErrRejected {
		return DeadLetter
	}
	if is, ok := err.(interface{ Is(error) bool }); ok && is.Is(crm.ErrRejected) {
		return DeadLetter
	}
	if inner := errors.Unwrap(err); inner != nil {
		return Classify(inner)
	}
	return Retry
}
