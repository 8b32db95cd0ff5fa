package app

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/crmlink/crmlink/board"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/httpapi"
	"github.com/crmlink/crmlink/internal/queue"
	"github.com/crmlink/crmlink/internal/ratelog"
)

// livePage is the live page's data (/ui/): the board the call sources report to, today's
// ledger the call outcomes and chat assignments are tallied into, and health.
type livePage struct {
	p      *App
	hub    *board.Hub
	board  *board.Board
	ledger *board.Ledger
	warn   *ratelog.Limiter

	mu       sync.Mutex
	health   *uiHealth
	healthAt time.Time
	sample   requestSample
}

// healthEvery bounds how often the page's health figures are gathered (a Redis ping, the
// queue's stats, the dead-letter list), however many pages watch.
const healthEvery = time.Second

// deadShown is how many dead letters the page lists.
const deadShown = 20

// newLive builds the board and the ledger; figures are kept in Redis when configured,
// else under data_dir/board.
func (p *App) newLive() (*livePage, error) {
	cfg := p.cfg
	loc, err := cfg.UI.Location()
	if err != nil {
		return nil, err
	}
	names := map[crm.UserID]string{}
	order := make([]crm.UserID, 0, len(cfg.Managers))
	for _, m := range cfg.Managers {
		names[crm.UserID(m.CRMUser)] = m.Name
		order = append(order, crm.UserID(m.CRMUser))
	}
	var store board.Store
	if p.redis != nil {
		store = board.NewRedisStore(p.redis, board.DefaultRedisPrefix)
	} else {
		store = board.NewFileStore(filepath.Join(cfg.DataDir, "board"))
	}
	hub := board.NewHub()
	return &livePage{
		p: p, hub: hub,
		board:  board.NewBoard(managerEndpoints(cfg.Managers), names, hub),
		ledger: board.NewLedger(store, loc, order, names, hub),
		warn:   ratelog.New(ratelog.DefaultInterval),
	}, nil
}

// tally adds an event's figures to today and to the per-manager metrics. A store that
// fails loses the page's figures, never the call's CRM records: it is logged and skipped.
func (l *livePage) tally(t board.Tally) {
	l.p.metrics.tally(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.ledger.Add(ctx, t); err != nil {
		if ok, suppressed := l.warn.Allow(); ok {
			l.p.log.Warn().Err(err).Int("suppressed", suppressed).Msg("live page: today's figures not stored")
		}
	}
}

// chatsAssigned counts chats given to a manager.
func (l *livePage) chatsAssigned(m crm.UserID, n int) {
	if m != 0 && n > 0 {
		l.tally(board.ChatTally(m, n))
	}
}

// Subscribe implements httpapi.Dashboard.
func (l *livePage) Subscribe() (<-chan struct{}, func()) { return l.hub.Subscribe() }

// uiState is the page's data.
type uiState struct {
	Now        time.Time       `json:"now"`
	Calls      []board.Call    `json:"calls"`
	Day        string          `json:"day"`
	Today      []board.Figures `json:"today"`
	TodayError string          `json:"today_error,omitempty"`
	Health     *uiHealth       `json:"health"`
}

type uiHealth struct {
	Checks []httpapi.CheckState `json:"checks"`
	AmoCRM *uiRequests          `json:"amocrm,omitempty"`
	Queue  *uiQueue             `json:"queue,omitempty"`
	Dead   []uiDead             `json:"dead,omitempty"`
}

// uiRequests are amoCRM requests per second, averaged since the previous look, against
// the account's limit.
type uiRequests struct {
	Call       float64 `json:"call"`
	Background float64 `json:"background"`
	Limit      int     `json:"limit"`
}

type uiQueue struct {
	Backlog    int64   `json:"backlog"`
	Dead       int64   `json:"dead"`
	OldestAgeS float64 `json:"oldest_age_s,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// uiDead is a dead letter without its payload (the page lists, the API has the rest).
type uiDead struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	FirstSeen time.Time `json:"first_seen"`
	LastError string    `json:"last_error,omitempty"`
}

type requestSample struct {
	at               time.Time
	call, background int64
}

// State implements httpapi.Dashboard.
func (l *livePage) State(ctx context.Context) any {
	s := uiState{Now: time.Now(), Calls: l.board.Calls(), Health: l.healthNow(ctx)}
	var err error
	if s.Day, s.Today, err = l.ledger.Figures(ctx); err != nil {
		s.TodayError = err.Error()
	}
	return s
}

// healthNow is the health, gathered at most every healthEvery.
func (l *livePage) healthNow(ctx context.Context) *uiHealth {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.health != nil && time.Since(l.healthAt) < healthEvery {
		return l.health
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h := &uiHealth{Checks: l.p.API.CheckStates(ctx)}
	if o := l.p.Observer; o != nil {
		detail := "following every call"
		if n := o.Connections(); n > 1 {
			detail = fmt.Sprintf("following every call of %d Asterisks", n)
		}
		if !o.Connected() {
			detail = "websocket down: calls outside Stasis are not shown or recorded"
		}
		h.Checks = append(h.Checks, httpapi.CheckState{Name: "observer", OK: o.Connected(), Detail: detail})
	}
	if c := l.p.crm; c != nil {
		now := time.Now()
		call, bg := c.Requests()
		r := &uiRequests{Limit: c.RateLimit()}
		if prev := l.sample; !prev.at.IsZero() {
			secs := now.Sub(prev.at).Seconds()
			r.Call, r.Background = float64(call-prev.call)/secs, float64(bg-prev.background)/secs
		}
		l.sample = requestSample{now, call, bg}
		h.AmoCRM = r
	}
	if ev := l.p.events; ev != nil {
		h.Queue, h.Dead = queueHealth(ctx, ev.queue)
	}
	l.health, l.healthAt = h, time.Now()
	return h
}

func queueHealth(ctx context.Context, q queue.Queue) (*uiQueue, []uiDead) {
	st, err := q.Stats(ctx)
	if err != nil {
		return &uiQueue{Error: err.Error()}, nil
	}
	u := &uiQueue{Backlog: st.Pending + st.Retrying + st.InFlight, Dead: st.Dead}
	if !st.OldestAt.IsZero() {
		u.OldestAgeS = time.Since(st.OldestAt).Seconds()
	}
	var dead []uiDead
	if evs, err := q.Dead(ctx, deadShown); err == nil {
		for _, e := range evs {
			dead = append(dead, uiDead{ID: e.ID, Kind: e.Kind, FirstSeen: e.FirstSeen, LastError: e.LastError})
		}
	}
	return u, dead
}
