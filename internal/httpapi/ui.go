package httpapi

import (
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"time"
)

// The live page (/ui/): calls in progress, today's figures per manager, health. Everything
// it needs is embedded here: no CDN, no third-party script. It logs in with http.token
// (admin) or http.read_token (viewer); the token is kept in an HttpOnly, SameSite=Strict
// cookie, which the Read and Admin routes accept like the bearer header (auth.go). The
// page renders everything from callers and amoCRM with textContent, never as HTML.

//go:embed ui
var uiFiles embed.FS

var uiPages = template.Must(template.ParseFS(uiFiles, "ui/*.html"))

const (
	uiCookie = "crmlink_ui"
	// uiHeader marks a change sent by the page's own script (a cross-site form cannot set it).
	uiHeader = "X-CRMLINK-UI"
	// uiRefresh is how often the event stream resends the state without a change, for the
	// health figures (requests per second, the backlog's age).
	uiRefresh = 2 * time.Second
)

// Dashboard is what the live page shows; internal/app builds it from the board, today's
// ledger, the queue and the health checks.
type Dashboard interface {
	// State is the page's data as JSON.
	State(ctx context.Context) any
	// Subscribe signals changes to the calls or today's figures.
	Subscribe() (<-chan struct{}, func())
}

// uiToken is the live page's cookie token.
func uiToken(r *http.Request) (string, bool) {
	c, err := r.Cookie(uiCookie)
	if err != nil || c.Value == "" {
		return "", false
	}
	return c.Value, true
}

// HandleUI registers the live page on the server. The page, its login and its script are
// open (they hold no data: without a valid cookie /ui/ is the login form); the data is
// Read, dead-letter replay (the page calls POST /v1/queue/dead/replay) Admin.
func (s *Server) HandleUI(d Dashboard) {
	s.Handle("GET /ui/{$}", Open, http.HandlerFunc(s.uiPage))
	s.Handle("POST /ui/login", Open, http.HandlerFunc(s.uiLogin))
	s.Handle("POST /ui/logout", Open, http.HandlerFunc(s.uiLogout))
	assets, _ := fs.Sub(uiFiles, "ui/assets")
	s.Handle("GET /ui/assets/", Open, http.StripPrefix("/ui/assets/", http.FileServerFS(assets)))
	s.Handle("GET /ui/api/state", Read, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, d.State(r.Context()))
	}))
	s.Handle("GET /ui/api/events", Read, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.uiEvents(w, r, d) }))
}

// pageHeaders keep the page to its own origin: no frames, no foreign scripts.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func (s *Server) uiPage(w http.ResponseWriter, r *http.Request) {
	pageHeaders(w)
	token, _ := uiToken(r)
	role := s.auth.role(token)
	if role == "" {
		_ = uiPages.ExecuteTemplate(w, "login.html", map[string]any{"Error": ""})
		return
	}
	_ = uiPages.ExecuteTemplate(w, "page.html", map[string]any{"Admin": role == roleAdmin, "Role": role})
}

func (s *Server) uiLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	token := ""
	if err := r.ParseForm(); err == nil {
		token = r.PostForm.Get("token")
	}
	if s.auth.role(token) == "" {
		if ok, suppressed := s.auth.refused.Allow(); ok {
			s.log.Warn().Str("remote", r.RemoteAddr).Bool("token_sent", token != "").Int("suppressed", suppressed).
				Msg("live page: login refused (wrong token)")
		}
		// The login form again, with the error: a page, not an API refusal.
		pageHeaders(w)
		_ = uiPages.ExecuteTemplate(w, "login.html", map[string]any{"Error": "Wrong token: use http.token or http.read_token."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: uiCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: int((12 * time.Hour).Seconds())})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (s *Server) uiLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: uiCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// uiEvents is the page's Server-Sent Events stream: the whole state at once, again after
// every change, and every uiRefresh for the health figures.
func (s *Server) uiEvents(w http.ResponseWriter, r *http.Request, d Dashboard) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		WriteError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	changes, stop := d.Subscribe()
	defer stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(uiRefresh)
	defer tick.Stop()
	for {
		b, err := json.Marshal(d.State(r.Context()))
		if err != nil {
			return
		}
		if _, err := w.Write(append(append([]byte("event: state\ndata: "), b...), '\n', '\n')); err != nil {
			return
		}
		flusher.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-s.stopping:
			return
		case <-changes:
		case <-tick.C:
		}
	}
}
