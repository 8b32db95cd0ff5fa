package crm

import "errors"

// ErrRejected is a write the CRM refused for its content (amoCRM's 400 "Request
// validation failed"): sending the same request again cannot succeed. Test with errors.Is.
var ErrRejected = errors.New("CRM rejected the request (400)")
