package amocrm

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
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
	auth       authorizer
	// backoff is the first wait after a 429; it doubles per retry up to backoffMax.
	backoff    time.Duration
	backoffMax time.Duration
	// batches joins concurrent writes into shared requests (writer_batch.go).
	batches *collector
}

var _ crm.Directory = (*Client)(nil)

// Requests counts the requests sent since start by priority: call-path lookups and
// background (event path) work, for the live page and the metrics.
func (c *Client) Requests() (call, background int64) {
	return c.limiter.spent[PriorityCall].Load(), c.limiter.spent[PriorityBackground].Load()
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
