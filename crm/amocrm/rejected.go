package amocrm

import "github.com/crmlink/crmlink/crm"

// Is makes a validation error crm.ErrRejected, so callers that know only the crm package
// can tell a rejected write (not worth a retry) from a failed one.
func (e *ValidationError) Is(target error) bool { return target == crm.ErrRejected }

// HTTPStatus makes the answer's status the one events.Classify judges an event by, as a
// chat platform's.
func (e *ValidationError) HTTPStatus() int { return e.Status }
