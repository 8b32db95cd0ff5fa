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

// mayRetry reports whether another attempt after wait still makes sense: within the
// context's deadline when it has one, else within MaxRetries.
func (c *Client) mayRetry(ctx context.Context, retries int, wait time.Duration) bool {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl) > wait
	}
	return retries < c.maxRetries
}
