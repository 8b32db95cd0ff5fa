// Package httpapi is crmlink's HTTP surface: every endpoint crmlink serves (health,
// Prometheus metrics, the /v1 API, the amoCRM and chat platforms' webhooks, the queue's
// operator endpoints) is a handler here, calling plain Go interfaces of the domain
// packages (routing, chatbridge, crm/amocrm, internal/queue), which know nothing of HTTP
// responses.
// Every route is registered with its Access: health and metrics are open, webhooks
// authenticate their callers themselves, reads that reveal client data need the read or
// admin token, changes need the admin token.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Check reports the state of one dependency for /healthz.
type Check struct {
	Name string
	// Required dependencies make /healthz answer 503 when they are down.
	Required bool
	State    func(ctx context.Context) (ok bool, detail string)
}

// Server is the HTTP API.
type Server struct {
	mux      *http.ServeMux
	auth     *authorizer
	routes   []Route
	checks   []Check
	registry *prometheus.Registry
	log      zerolog.Logger
	// stopping is closed when the server shuts down, to end the live page's streams
	// (Shutdown waits for requests in progress and would wait for them).
	stopping     chan struct{}
	stoppingOnce sync.Once
}

// Route is one registered endpoint and who may call it.
type Route struct {
	Pattern string // as given to http.ServeMux: "GET /v1/route"
	Access  Access
}

// New builds a server with /healthz and /metrics; tokens guard the Read and Admin routes.
func New(tokens Tokens, registry *prometheus.Registry, log zerolog.Logger) *Server {
	s := &Server{mux: http.NewServeMux(), auth: newAuthorizer(tokens), registry: registry, log: log.With().Str("component", "http").Logger(),
		stopping: make(chan struct{})}
	s.Handle("GET /healthz", Open, http.HandlerFunc(s.healthz))
	s.Handle("GET /metrics", Open, promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry}))
	return s
}

// AddCheck adds a dependency to /healthz.
func (s *Server) AddCheck(c Check) { s.checks = append(s.checks, c) }

// Handle registers an endpoint ("GET /v1/route") with who may call it.
func (s *Server) Handle(pattern string, access Access, h http.Handler) {
	s.mux.Handle(pattern, s.guard(access, h))
	s.routes = append(s.routes, Route{Pattern: pattern, Access: access})
}

// HandleCORS is Handle for an endpoint browsers call from pages of other origins (the
// amoCRM widget): refusals carry the CORS headers too, so the page can read why, and the
// path answers the browser's preflight (OPTIONS, open: it carries no credentials).
func (s *Server) HandleCORS(pattern string, access Access, origins []string, h http.Handler) {
	s.mux.Handle(pattern, CORS(origins, s.guard(access, h)))
	s.routes = append(s.routes, Route{Pattern: pattern, Access: access})
	_, path, _ := strings.Cut(pattern, " ")
	preflight := "OPTIONS " + path
	if !slices.ContainsFunc(s.routes, func(r Route) bool { return r.Pattern == preflight }) {
		s.mux.Handle(preflight, CORS(origins, http.NotFoundHandler()))
		s.routes = append(s.routes, Route{Pattern: preflight, Access: Open})
	}
}

// Routes lists the registered endpoints in registration order.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// ListenAndServe serves on addr until ctx ends, then shuts down gracefully.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, l)
}

// Serve is ListenAndServe on a listener.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second}
	srv.RegisterOnShutdown(func() { s.stoppingOnce.Do(func() { close(s.stopping) }) })
	s.log.Info().Str("listen", l.Addr().String()).Msg("HTTP API listening")
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type health struct {
	Status string                 `json:"status"`
	Checks map[string]checkResult `json:"checks"`
}

type checkResult struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	h := health{Status: "ok", Checks: map[string]checkResult{}}
	code := http.StatusOK
	for _, c := range s.CheckStates(ctx) {
		h.Checks[c.Name] = checkResult{OK: c.OK, Detail: c.Detail}
		if !c.OK && c.Required {
			h.Status, code = "degraded", http.StatusServiceUnavailable
		}
	}
	WriteJSON(w, code, h)
}

// CheckState is one check's answer.
type CheckState struct {
	Name     string `json:"name"`
	Required bool   `json:"required"`
	OK       bool   `json:"ok"`
	Detail   string `json:"detail,omitempty"`
}

// CheckStates runs the /healthz checks, in the order they were added (the live page shows them).
func (s *Server) CheckStates(ctx context.Context) []CheckState {
	out := make([]CheckState, 0, len(s.checks))
	for _, c := range s.checks {
		ok, detail := c.State(ctx)
		out = append(out, CheckState{Name: c.Name, Required: c.Required, OK: ok, Detail: detail})
	}
	return out
}

// WriteJSON writes v as the response.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes {"error": msg}.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, map[string]string{"error": msg})
}

// CheckNames lists the registered checks, for logs.
func (s *Server) CheckNames() []string {
	var n []string
	for _, c := range s.checks {
		n = append(n, c.Name)
	}
	sort.Strings(n)
	return n
}
