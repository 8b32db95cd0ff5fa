package sandbox

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/internal/reqcount"
)

// Server is an emulated amoCRM account. It serves the v4 API, the OAuth token endpoint and
// the control API under /_sandbox/; all its methods are safe for concurrent use.
type Server struct {
	log            zerolog.Logger
	webhookClient  *http.Client
	webhookTimeout time.Duration
	now            func() time.Time
	// onHang, when set (tests), is called as a request starts to hang.
	onHang func()

	mu       sync.Mutex
	st       *store
	settings Seed // Token, RateLimit, WebhookURL, Account, APIUserID, Pipeline, OAuth in effect
	oauth    oauthState
	window   window
	faults   faults
	requests reqcount.Counter
	// rateLimited counts the 429s served: a client that keeps to the limit sees none.
	rateLimited atomic.Int64
	closed      chan struct{}
	closedOnce  sync.Once
}

// Option adjusts a Server; options win over the seed's settings.
type Option func(*Server)

// WithLogger logs every API request and webhook.
func WithLogger(l zerolog.Logger) Option { return func(s *Server) { s.log = l } }

// WithRateLimit sets how many API requests a sliding second may hold; negative disables.
func WithRateLimit(n int) Option { return func(s *Server) { s.settings.RateLimit = n } }

// WithWebhookURL sets where webhooks (responsible changes, Unsorted decisions) are posted.
func WithWebhookURL(u string) Option { return func(s *Server) { s.settings.WebhookURL = u } }

// WithToken sets the long-lived token the API accepts.
func WithToken(t string) Option { return func(s *Server) { s.settings.Token = t } }

// WithWebhookClient sets the HTTP client used to post webhooks and how long the sandbox
// waits for their answer (amoCRM waits 2 s).
func WithWebhookClient(c *http.Client, timeout time.Duration) Option {
	return func(s *Server) { s.webhookClient, s.webhookTimeout = c, timeout }
}

// New builds a Server from a seed. Check the seed with Validate (LoadSeed and ParseSeed do)
// first: New drops what it cannot use rather than fail.
func New(seed Seed, opts ...Option) *Server {
	s := &Server{
		log:            zerolog.Nop(),
		webhookClient:  &http.Client{},
		webhookTimeout: 2 * time.Second,
		now:            time.Now,
		closed:         make(chan struct{}),
	}
	s.settings = settingsOf(seed)
	for _, o := range opts {
		o(s)
	}
	s.settings = withDefaults(s.settings)
	s.st = newStore(seed, s.now())
	s.oauth = newOAuthState(s.settings.OAuth)
	return s
}

// settingsOf keeps the seed's settings without its data.
func settingsOf(seed Seed) Seed {
	return Seed{Token: seed.Token, RateLimit: seed.RateLimit, WebhookURL: seed.WebhookURL, Account: seed.Account,
		APIUserID: seed.APIUserID, Pipeline: seed.Pipeline, OAuth: seed.OAuth}
}

func withDefaults(s Seed) Seed {
	if s.Token == "" {
		s.Token = DefaultToken
	}
	if s.RateLimit == 0 {
		s.RateLimit = DefaultRateLimit
	}
	if s.Account.ID == 0 {
		s.Account.ID = DefaultAccountID
	}
	if s.Account.Subdomain == "" {
		s.Account.Subdomain = DefaultSubdomain
	}
	if s.Pipeline.ID == 0 {
		s.Pipeline.ID = DefaultPipelineID
	}
	if s.Pipeline.StatusID == 0 {
		s.Pipeline.StatusID = DefaultStatusID
	}
	return s
}

// Close releases requests held by Hang; a closed Server answers them 503.
func (s *Server) Close() { s.closedOnce.Do(func() { close(s.closed) }) }

// Token is the long-lived token the API accepts.
func (s *Server) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settings.Token
}

// ServeHTTP dispatches to the control API, the token endpoint or the v4 API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/_sandbox/"):
		s.serveControl(w, r)
	case r.URL.Path == "/oauth2/access_token":
		s.count(r)
		s.serveToken(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/v4/") || isCallEvents(r.URL.Path):
		s.serveAPIRequest(w, r)
	default:
		writeProblem(w, http.StatusNotFound, "no such endpoint")
	}
}

// serveAPIRequest runs an API request through what a real account does before answering,
// in this order: count it, the injected faults (hang, fail, latency), the rate limit, the
// token check, then the endpoint.
func (s *Server) serveAPIRequest(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	s.count(r)
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		s.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", rec.status).
			Dur("took", s.now().Sub(start)).Msg("sandbox api request")
	}()
	if !s.injectFaults(rec, r) {
		return
	}
	if !s.allowRate() {
		s.rateLimited.Add(1)
		writeProblem(rec, http.StatusTooManyRequests, "more than the account's requests per second")
		return
	}
	if !s.authorised(r) {
		writeProblem(rec, http.StatusUnauthorized, "the token is missing, wrong or expired")
		return
	}
	s.serveAPI(rec, r)
}

func (s *Server) count(r *http.Request) { s.requests.Add(r) }

func (s *Server) renderer(r *http.Request) renderer {
	return newRenderer(r, s.settings.Account.ID, s.st)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// RateLimited is how many requests got 429 since the start or the last ResetCounters.
func (s *Server) RateLimited() int { return int(s.rateLimited.Load()) }
