package amocrm

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"
)

// backoffFor is the wait before retry number n (from 0) after a 429: exponential with equal
// jitter, so that several workers hit by the same limit do not come back in step, and never
// shorter than a Retry-After the server sent.
func (c *Client) backoffFor(n int, retryAfter string) time.Duration {
	d := c.backoff << min(n, 16)
	if d <= 0 || d > c.backoffMax {
		d = c.backoffMax
	}
	d = d/2 + rand.N(d/2+1)
	if s, err := strconv.Atoi(retryAfter); err == nil && s > 0 {
		d = max(d, time.Duration(s)*time.Second)
	}
	return d
}

// retryMargin is the time a retry's answer must leave before the caller's deadline, on top
// of the wait and another round trip as long as the last one: a call-path caller that gets
// the CRM's refusal in time reports a CRM error, not its own timeout.
const retryMargin = 50 * time.Millisecond

// mayRetry reports whether another attempt after wait still makes sense: when the context
// has a deadline, only if the wait, an attempt as long as the last one (took) and
// retryMargin fit in it; else within MaxRetries.
func (c *Client) mayRetry(ctx context.Context, retries int, wait, took time.Duration) bool {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl) > wait+took+retryMargin
	}
	return retries < c.maxRetries
}
