package routing

import (
	"time"

	"golang.org/x/time/rate"
)

// Cold lookups for inquiries (decisions asked outside a call, Call.Inquiry) start at most
// inquiryBurst at once and then one per inquiryEvery: a person checking a few numbers gets
// answers at once, a script walking a number list gets one new number a second, about two
// of the account's 7 amoCRM requests a second, leaving the rest to calls and CRM writes.
const (
	inquiryEvery = time.Second
	inquiryBurst = 3
)

// newInquiryPacer spaces cold inquiry lookups. Its Wait fails at once when the next slot
// is past the asker's deadline: the asker learns now that the budget for inquiries is spent.
func newInquiryPacer() *rate.Limiter {
	return rate.NewLimiter(rate.Every(inquiryEvery), inquiryBurst)
}
