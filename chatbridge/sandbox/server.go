// Package sandbox emulates the chat platforms crmlink writes to, for tests and demos: the
// Wazzup v3 API (contacts with responsibleUserId, users, webhooks settings; webhooks that
// expect the created contact or deal in the answer) and ChatApp's API as the chatapp
// adapter's package doc describes it (tokens.make and tokens.refresh with lifetimes a test
// can shorten, ApiInvalidTokenError for an expired token, chats with a responsible,
// users), with their authentication, status codes and error bodies. Acting as the people in those tools, it
// posts the platforms' webhooks to configured URLs: a ChatApp employee reassigning a chat
// (and, as ChatApp does for every change, an API reassignment too), a Wazzup employee
// reassigning a contact, a new client writing, a message.
//
// Read-back for tests: Chats (who is responsible for each of a client's chats now),
// Assignments (every responsible change, by API or by a person, in order) and request
// counts per "METHOD /path". A Server is an http.Handler: mount it in httptest.NewServer
// and point both adapters' API URL at it. The control API under /_sandbox/ mirrors the
// Go API for tools that are not Go.
package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/internal/reqcount"
)

// Platform names, as chatbridge spells them.
const (
	Wazzup  = "wazzup"
	ChatApp = "chatapp"
)

// Defaults of a Server built from an empty seed.
const (
	DefaultWazzupAPIKey    = "wazzup-sandbox-key"
	DefaultWazzupCRMKey    = "wazzup-sandbox-crm-key"
	DefaultChatAppEmail    = "owner@example.com"
	DefaultChatAppPassword = "chatapp-sandbox-password"
	DefaultChatAppAppID    = "app_1_1"
)

// Errors of the Go API; the control API answers them 400 and 404.
var (
	ErrBadRequest = errors.New("chat sandbox: bad request")
	ErrNotFound   = errors.New("chat sandbox: no such chat, contact or user")
)

// Server is an emulated Wazzup and ChatApp account. All its methods are safe for
// concurrent use; webhooks are posted without holding its lock.
type Server struct {
	log            zerolog.Logger
	webhookClient  *http.Client
	webhookTimeout time.Duration
	now            func() time.Time
	apiEcho        bool

	mu          sync.Mutex
	wazzup      wazzupState
	chatapp     chatappState
	requests    reqcount.Counter
	faults      []*fault
	assignments []Assignment
	eventSeq    atomic.Int64
}

// Option adjusts a Server.
type Option func(*Server)

// WithLogger logs requests and webhooks.
func WithLogger(l zerolog.Logger) Option { return func(s *Server) { s.log = l } }

// WithClock sets the time of webhooks and assignments.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithWebhookClient sets the client that posts webhooks and how long the sandbox waits
// for an answer.
func WithWebhookClient(c *http.Client, timeout time.Duration) Option {
	return func(s *Server) { s.webhookClient, s.webhookTimeout = c, timeout }
}

// WithAPIEcho sets whether a ChatApp reassignment made through the API posts the
// chatResponsible webhook, as a person's does (default true: the echo crmlink must ignore).
func WithAPIEcho(on bool) Option { return func(s *Server) { s.apiEcho = on } }

// New builds a Server from a seed.
func New(seed Seed, opts ...Option) *Server {
	s := &Server{
		log:            zerolog.Nop(),
		webhookClient:  &http.Client{},
		webhookTimeout: 5 * time.Second,
		now:            time.Now,
		apiEcho:        true,
	}
	for _, o := range opts {
		o(s)
	}
	s.load(seed)
	return s
}

// Seed is the content of the emulated accounts.
type Seed struct {
	Wazzup  WazzupSeed  `json:"wazzup"`
	ChatApp ChatAppSeed `json:"chatapp"`
}

// Reseed replaces all data and settings with the seed's; counts and assignments restart.
func (s *Server) Reseed(seed Seed) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load(seed)
	s.requests.Reset()
	s.faults, s.assignments = nil, nil
}

// load sets the state from a seed; the caller holds mu (or owns s).
func (s *Server) load(seed Seed) {
	s.wazzup = newWazzupState(seed.Wazzup)
	s.chatapp = newChatAppState(seed.ChatApp)
}

// SetWebhookURL sets where a platform's webhooks go ("" stops them).
func (s *Server) SetWebhookURL(platform, url string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch platform {
	case Wazzup:
		s.wazzup.webhookURL = url
	case ChatApp:
		s.chatapp.webhookURL = url
	default:
		return fmt.Errorf("%w: platform %q: want wazzup or chatapp", ErrBadRequest, platform)
	}
	return nil
}

// ServeHTTP dispatches to the control API, Wazzup's /v3/ and ChatApp's /v1/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/_sandbox/"):
		s.serveControl(w, r)
		return
	case strings.HasPrefix(r.URL.Path, "/v3/"):
		s.count(r)
		if s.injectFault(w, r) {
			return
		}
		s.serveWazzup(w, r)
	case strings.HasPrefix(r.URL.Path, "/v1/"):
		s.count(r)
		if s.injectFault(w, r) {
			return
		}
		s.serveChatApp(w, r)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "notFound", "description": "no such endpoint"})
	}
}

func (s *Server) count(r *http.Request) { s.requests.Add(r) }

// Requests counts the API requests received for a key: "METHOD /path" or "/path" (any
// method).
func (s *Server) Requests(key string) int { return s.requests.Requests(key) }

// RequestCounts returns every count by "METHOD /path".
func (s *Server) RequestCounts() map[string]int { return s.requests.All() }

// ResetCounters forgets request counts and assignments.
func (s *Server) ResetCounters() {
	s.requests.Reset()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assignments = nil
}

// fault answers matching API requests with a status, a number of times.
type fault struct {
	method, path string
	status       int
	left         int
}

// Fail makes the next `times` API requests with the method and path (either "" for any)
// fail with status, before they take effect.
func (s *Server) Fail(method, path string, status, times int) error {
	if status < 400 || status > 599 || times <= 0 {
		return fmt.Errorf("%w: fail needs a 4xx/5xx status and a positive count", ErrBadRequest)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, path: path, status: status, left: times})
	return nil
}

func (s *Server) injectFault(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	var hit *fault
	for _, f := range s.faults {
		if f.left > 0 && (f.method == "" || f.method == r.Method) && (f.path == "" || f.path == r.URL.Path) {
			f.left--
			hit = f
			break
		}
	}
	s.mu.Unlock()
	if hit == nil {
		return false
	}
	writeJSON(w, hit.status, map[string]any{"error": "injected", "description": fmt.Sprintf("sandbox fault %d", hit.status)})
	return true
}

// Assignment is one responsible change in a platform.
type Assignment struct {
	Platform string `json:"platform"`
	// ID is the chat's ChatRef.ID: a Wazzup contact id, a ChatApp "license/messenger/chat".
	ID   string `json:"id"`
	User string `json:"user"`
	// By is "api" for a change through the API (crmlink), "person" for one made in the
	// platform's interface.
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// Assignments lists responsible changes since the start or the last ResetCounters.
func (s *Server) Assignments() []Assignment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.assignments)
}

// APIAssignments counts the changes crmlink made through the APIs.
func (s *Server) APIAssignments() int {
	n := 0
	for _, a := range s.Assignments() {
		if a.By == "api" {
			n++
		}
	}
	return n
}

// assigned records a change; the caller holds mu.
func (s *Server) assigned(platform, id, user, by string) {
	s.assignments = append(s.assignments, Assignment{Platform: platform, ID: id, User: user, By: by, At: s.now().UTC()})
}

// ChatState is one of a client's chats as the platform holds it now.
type ChatState struct {
	Platform    string `json:"platform"`
	ID          string `json:"id"`
	ChatType    string `json:"chat_type"`
	ChatID      string `json:"chat_id"`
	Responsible string `json:"responsible"`
}

// Chats returns every chat of the client with the number (any spelling; compared by
// digits) on both platforms, with its responsible now, ordered by platform and id.
func (s *Server) Chats(phone string) []ChatState {
	digits := onlyDigits(phone)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append(s.wazzup.chatsOf(digits), s.chatapp.chatsOf(digits)...)
	slices.SortFunc(out, func(a, b ChatState) int {
		if c := strings.Compare(a.Platform, b.Platform); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Responsible maps each of the client's chats ("platform:id") to its responsible now.
func (s *Server) Responsible(phone string) map[string]string {
	out := map[string]string{}
	for _, c := range s.Chats(phone) {
		out[c.Platform+":"+c.ID] = c.Responsible
	}
	return out
}

func onlyDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Delivery is how a webhook receiver answered.
type Delivery struct {
	URL    string `json:"url"`
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
	// Body is the receiver's answer (up to 1 MiB), for webhooks whose answer matters.
	Body json.RawMessage `json:"body,omitempty"`
}

// post delivers a JSON webhook; bearer, when set, is sent as the Authorization header.
func (s *Server) post(ctx context.Context, target, bearer string, body any) *Delivery {
	if target == "" {
		return nil
	}
	d := &Delivery{URL: target}
	b, err := json.Marshal(body)
	if err != nil {
		d.Error = err.Error()
		return d
	}
	ctx, cancel := context.WithTimeout(ctx, s.webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(b))
	if err != nil {
		d.Error = err.Error()
		return d
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := s.webhookClient.Do(req)
	if err != nil {
		d.Error = err.Error()
		s.log.Warn().Err(err).Str("url", target).Msg("chat sandbox webhook not delivered")
		return d
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	d.Status = resp.StatusCode
	if json.Valid(answer) {
		d.Body = answer
	}
	s.log.Debug().Str("url", target).Int("status", d.Status).Msg("chat sandbox webhook delivered")
	return d
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// maxBody bounds an API or control request body.
const maxBody = 4 << 20

func decodeBody(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%w: body: %w", ErrBadRequest, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %w", ErrBadRequest, err)
	}
	return nil
}
