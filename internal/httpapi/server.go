// Package httpapi is crmlink's HTTP listener: health, Prometheus metrics and the /v1 API.
// Reads are open; every state-changing request needs the configured bearer token.
package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sort"
	"strings"
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
	token    string
	checks   []Check
	registry *prometheus.Registry
	log      zerolog.Logger
}

// New builds a server; token guards state-changing endpoints (an empty token refuses them).
func New(token string, registry *prometheus.Registry, log zerolog.Logger) *Server {
	s := &Server{mux: http.NewServeMux(), token: token, registry: registry, log: log.With().Str("component", "http").Logger()}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry}))
	return s
}

// AddCheck adds a dependency to /healthz.
func (s *Server) AddCheck(c Check) { s.checks = append(s.checks, c) }

// Handle registers a read-only endpoint ("GET /v1/route").
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// HandleProtected registers an endpoint that needs the bearer token.
func (s *Server) HandleProtected(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.requireToken(h))
}

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
	for _, c := range s.checks {
		ok, detail := c.State(ctx)
		h.Checks[c.Name] = checkResult{OK: ok, Detail: detail}
		if !ok && c.Required {
			h.Status, code = "degraded", http.StatusServiceUnavailable
		}
	}
	WriteJSON(w, code, h)
}

func (s *Server) requireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if s.token == "" || !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
			s.log.Warn().Str("path", r.URL.Path).Str("remote", r.RemoteAddr).Msg("rejected: missing or wrong bearer token")
			WriteError(w, http.StatusUnauthorized, "this endpoint needs Authorization: Bearer <http.token>")
			return
		}
		h.ServeHTTP(w, r)
	})
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
