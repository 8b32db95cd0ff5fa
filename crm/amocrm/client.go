package amocrm

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/crm"
)

// Client is one amoCRM account. It is safe for concurrent use; every request it makes
// spends the same rate budget.
type Client struct {
	base       string
	basePath   string
	http       *http.Client
	timeout    time.Duration
	maxRetries int
	region     string
	log        zerolog.Logger
	limiter    *limiter
	// shared, when set, spends the budget across instances (falling back to limiter).
	shared *sharedBudget
	auth   authorizer
	// backoff is the first wait after a 429; it doubles per retry up to backoffMax.
	backoff    time.Duration
	backoffMax time.Duration
	// batches joins concurrent writes into shared requests (writer_batch.go).
	batches *collector
	// sentCall and sentBackground count the requests let through the budget (Requests).
	sentCall, sentBackground atomic.Int64
}

var _ crm.Directory = (*Client)(nil)

// Requests counts the requests this instance sent since start: call-path lookups, and
// everything else (the incoming-call cards and the event path's work), for the live page
// and the metrics.
func (c *Client) Requests() (call, background int64) {
	return c.sentCall.Load(), c.sentBackground.Load()
}

// Close stops the shared budget's heartbeats (Options.SharedBudget): peers then count this
// instance as gone and take its share. Requests after Close spend the budget on their own.
func (c *Client) Close() {
	if c.shared != nil {
		c.shared.close()
	}
}

// RateLimit is the account's budget in requests per window (amoCRM: 7 a second).
func (c *Client) RateLimit() int { return c.limiter.n }

// New builds a Client. With OAuth it reads the token file if it exists; without one, requests
// fail with crm.ErrUnauthorized until ExchangeCode has stored the first tokens.
func New(opts Options) (*Client, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:       o.BaseURL,
		basePath:   basePathOf(o.BaseURL),
		http:       o.HTTPClient,
		timeout:    o.RequestTimeout,
		maxRetries: o.MaxRetries,
		region:     o.Region,
		log:        o.Logger.With().Str("component", "amocrm").Logger(),
		limiter:    newLimiter(rateWindow(o.RateLimit, o.RateMargin)).reserveForCalls(o.CallReserve),
		backoff:    250 * time.Millisecond,
		backoffMax: 4 * time.Second,
	}
	c.batches = newCollector(c)
	if o.SharedBudget != nil {
		c.shared = newSharedBudget(o.SharedBudget, o.SharedBudgetKey, o.Instances, o.PeersCutOff, c.limiter, c.log)
	}
	if o.OAuth != nil {
		src, err := loadOAuth(*o.OAuth)
		if err != nil {
			return nil, err
		}
		c.auth = &oauthAuthorizer{c: c, src: src}
	} else {
		c.auth = staticToken(o.Token)
	}
	return c, nil
}

func basePathOf(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	return strings.TrimRight(u.Path, "/")
}

func defaultHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.MaxIdleConnsPerHost = 8
	return &http.Client{Transport: tr}
}

// apiError wraps err with the request line, the form every error of this package takes.
func apiError(method, path string, err error) error {
	return fmt.Errorf("amocrm %s %s: %w", method, path, err)
}

// waitBudget waits for a slot of the account's budget: the shared one when several
// instances spend it, the process's own otherwise.
func (c *Client) waitBudget(ctx context.Context, p Priority) error {
	var err error
	if c.shared != nil {
		err = c.shared.wait(ctx, p)
	} else {
		err = c.limiter.wait(ctx, p)
	}
	if err == nil {
		if p == PriorityCall {
			c.sentCall.Add(1)
		} else {
			c.sentBackground.Add(1)
		}
	}
	return err
}
