package amocrm

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Defaults applied by New when the option is left zero.
const (
	DefaultRateLimit      = 7 // requests per second, amoCRM's documented account limit
	DefaultRateMargin     = 50 * time.Millisecond
	DefaultRequestTimeout = 20 * time.Second
	DefaultRegion         = "RU"
	DefaultMaxRetries     = 4
)

// minRateLimit is one request per hour; a smaller budget is a typo, not an account.
const minRateLimit = 1.0 / 3600

// Options configure a Client. Set exactly one of Token and OAuth.
type Options struct {
	// BaseURL is the account's own address ("https://sub.amocrm.ru") or the sandbox's.
	BaseURL string
	// Token is a long-lived token of a private integration.
	Token string
	// OAuth enables the OAuth 2.0 flow with tokens kept in OAuth.TokenFile.
	OAuth *OAuth

	// RateLimit is the account's request budget per second shared by every request of the
	// Client; default 7. It is spent the way amoCRM counts it, over a sliding window: at
	// most floor(RateLimit) requests in any second, back to back when the account is idle.
	// Below one per second the window stretches: 0.5 is one request per two seconds.
	RateLimit float64
	// RateMargin widens the window (one second, or 1/RateLimit seconds) so that network
	// jitter between the client's send and the server's arrival never puts one request too
	// many into the account's second; default 50 ms. Raise it on a link with more jitter.
	RateMargin time.Duration
	// CallReserve is how many requests of every window background work (the rules
	// engine, the chat sync) may not take: they stay free for call-path owner lookups, so
	// a cold lookup does not wait behind a burst of CRM writes. 0: none; at most one less
	// than the budget.
	CallReserve int
	// SharedBudget, when set, is the Redis every crmlink instance of the account shares:
	// the budget (RateLimit, RateMargin, CallReserve) is then spent across all of them, not
	// per process. While this Redis does not answer, the process's own limiter serves
	// (budget_shared.go says how that degrades). Nil: the budget is the process's own.
	SharedBudget redis.UniversalClient
	// SharedBudgetKey is the Redis key of the shared budget; default
	// DefaultSharedBudgetKey. Instances of one account must use the same key.
	SharedBudgetKey string
	// Instances is how many crmlink instances share the budget: each owns RateLimit/Instances
	// (at least one request per window), which it spends on its own while SharedBudget does
	// not answer and the others leave free meanwhile (budget_shared.go). 0 or 1: alone, the
	// whole budget.
	Instances int
	// PeersCutOff reports whether every other instance said moments ago that it cannot
	// reach SharedBudget either: an instance cut off for longer than ownFor (10 s) keeps
	// spending its share only while this holds. Nil: never.
	PeersCutOff func() bool
	// MaxRetries bounds the retries after a 429 when the context has no deadline; with a
	// deadline the client retries while the next attempt still fits in it. Default 4.
	MaxRetries int
	// HTTPClient sends the requests; default a client with a 5 s connect timeout.
	HTTPClient *http.Client
	// RequestTimeout bounds one HTTP attempt on top of the caller's context; default 20 s.
	RequestTimeout time.Duration
	// Logger receives request and token-refresh events (never a token).
	Logger zerolog.Logger
	// Region is the ISO country used to read numbers written on cards without a country
	// code; default "RU".
	Region string
}

// OAuth holds the credentials of an amoCRM integration that uses OAuth 2.0.
type OAuth struct {
	ClientID     string
	ClientSecret string
	RedirectURI  string
	// TokenFile keeps the access and refresh tokens (JSON, mode 0600); it is rewritten
	// atomically after every refresh because amoCRM issues a new refresh token each time.
	TokenFile string
}

// withDefaults validates the options and fills the zero ones; errors say what to change.
func (o Options) withDefaults() (Options, error) {
	u, err := url.Parse(strings.TrimRight(o.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return o, fmt.Errorf("amocrm: base URL %q: set it to the account address, e.g. https://sub.amocrm.ru", o.BaseURL)
	}
	o.BaseURL = u.Scheme + "://" + u.Host + u.Path
	switch {
	case o.Token != "" && o.OAuth != nil:
		return o, errors.New("amocrm: both a long-lived token and OAuth are set: keep one of them")
	case o.Token == "" && o.OAuth == nil:
		return o, errors.New("amocrm: no credentials: set a long-lived token or the OAuth client and token file")
	case o.OAuth != nil:
		if err := o.OAuth.validate(); err != nil {
			return o, err
		}
	}
	if o.RateLimit < 0 || math.IsNaN(o.RateLimit) || o.RateMargin < 0 || o.MaxRetries < 0 || o.RequestTimeout < 0 || o.CallReserve < 0 {
		return o, errors.New("amocrm: rate limit, rate margin, call reserve, retries and timeout must not be negative")
	}
	if o.RateLimit != 0 && o.RateLimit < minRateLimit {
		return o, fmt.Errorf("amocrm: rate limit %g requests per second is less than one per hour: set the account's budget, e.g. 7", o.RateLimit)
	}
	if o.RateLimit == 0 {
		o.RateLimit = DefaultRateLimit
	}
	if o.RateMargin == 0 {
		o.RateMargin = DefaultRateMargin
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.HTTPClient == nil {
		o.HTTPClient = defaultHTTPClient()
	}
	return o, nil
}

func (a *OAuth) validate() error {
	var missing []string
	if a.ClientID == "" {
		missing = append(missing, "client id")
	}
	if a.ClientSecret == "" {
		missing = append(missing, "client secret")
	}
	if a.RedirectURI == "" {
		missing = append(missing, "redirect URI")
	}
	if a.TokenFile == "" {
		missing = append(missing, "token file")
	}
	if len(missing) > 0 {
		return fmt.Errorf("amocrm: OAuth needs the %s of the integration", strings.Join(missing, ", "))
	}
	return nil
}
