package board

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
)

// Counter fields of a manager's day, as stored and as the metrics name them.
const (
	FieldRouted   = "routed"   // incoming calls routed to the manager (their phones rang)
	FieldAnswered = "answered" // incoming calls the manager talked on
	FieldMissed   = "missed"   // routed to the manager, not answered by them
	FieldTalkMS   = "talk_ms"  // talk time, incoming and outgoing, in milliseconds
	FieldChats    = "chats"    // chats assigned to the manager
	// FallbackPrefix + reason counts the calls of the manager's clients that went to the
	// fallback ("fallback:owner_no_answer"); manager 0 holds those of nobody's clients.
	FallbackPrefix = "fallback:"
)

// Count is one increment of one manager's day.
type Count struct {
	Manager crm.UserID
	Field   string
	N       int64
}

// Tally is what one event adds to the day: counts, and the time the manager took to
// answer when they answered an incoming call.
type Tally struct {
	Counts []Count
	// Answer is the ring time of an answered incoming call, of Answerer.
	Answer   time.Duration
	Answerer crm.UserID
}

// TallyOf is what a finished call adds to its managers' day; the Prometheus metrics count
// the same tally, so the page and Grafana agree.
func TallyOf(o routing.CallOutcome) Tally {
	var t Tally
	add := func(m crm.UserID, f string, n int64) { t.Counts = append(t.Counts, Count{m, f, n}) }
	if o.Direction == routing.Outgoing {
		if o.Answered && o.Manager != 0 {
			add(o.Manager, FieldTalkMS, o.TalkDuration.Milliseconds())
		}
		return t
	}
	d := o.Decision
	if d.Result == routing.Fallback {
		add(d.Owner, FallbackPrefix+string(d.Reason), 1)
	}
	// The owner's phones rang: routed, or back to the fallback because nobody answered.
	if owner := d.Owner; owner != 0 && (d.Result == routing.Routed || d.Reason == routing.ReasonOwnerNoAnswer) {
		add(owner, FieldRouted, 1)
		if o.AnsweredBy != owner {
			add(owner, FieldMissed, 1)
		}
	}
	if o.Answered && o.AnsweredBy != 0 {
		add(o.AnsweredBy, FieldAnswered, 1)
		add(o.AnsweredBy, FieldTalkMS, o.TalkDuration.Milliseconds())
		t.Answer, t.Answerer = o.RingDuration, o.AnsweredBy
	}
	return t
}

// ChatTally is what chats assigned to a manager add to the day.
func ChatTally(m crm.UserID, chats int) Tally {
	return Tally{Counts: []Count{{m, FieldChats, int64(chats)}}}
}

// Day is a day's raw figures as a Store keeps them.
type Day struct {
	Counts map[crm.UserID]map[string]int64 `json:"counts"`
	// AnswerMS are the times to answer, per manager, in milliseconds.
	AnswerMS map[crm.UserID][]int64 `json:"answer_ms"`
}

func newDay() *Day {
	return &Day{Counts: map[crm.UserID]map[string]int64{}, AnswerMS: map[crm.UserID][]int64{}}
}

// add applies a tally.
func (d *Day) add(t Tally) {
	for _, c := range t.Counts {
		if d.Counts[c.Manager] == nil {
			d.Counts[c.Manager] = map[string]int64{}
		}
		d.Counts[c.Manager][c.Field] += c.N
	}
	if t.Answerer != 0 {
		d.AnswerMS[t.Answerer] = append(d.AnswerMS[t.Answerer], t.Answer.Milliseconds())
	}
}

// Store keeps the days' figures so that they survive a restart: Redis shared by every
// instance, or a file per day under data_dir.
type Store interface {
	Add(ctx context.Context, day string, t Tally) error
	Day(ctx context.Context, day string) (*Day, error)
}

// Figures are one manager's day as the page shows it.
type Figures struct {
	Manager  crm.UserID `json:"manager"`
	Name     string     `json:"name"`
	Routed   int64      `json:"routed"`
	Answered int64      `json:"answered"`
	Missed   int64      `json:"missed"`
	// Fallbacks are the calls of the manager's clients that went to the fallback, by reason.
	Fallbacks map[routing.Reason]int64 `json:"fallbacks,omitempty"`
	// MedianAnswerMS is the median time the manager took to answer (0: no answer yet).
	MedianAnswerMS int64 `json:"median_answer_ms"`
	TalkMS         int64 `json:"talk_ms"`
	Chats          int64 `json:"chats"`
}

// Ledger tallies events into the day they happen in, in a time zone: figures reset at its
// midnight.
type Ledger struct {
	store Store
	loc   *time.Location
	names map[crm.UserID]string
	order []crm.UserID // the configured managers, shown even on a quiet day
	now   func() time.Time
	hub   *Hub
}

// NewLedger builds a ledger over a store; managers are listed in the given order.
func NewLedger(store Store, loc *time.Location, managers []crm.UserID, names map[crm.UserID]string, hub *Hub) *Ledger {
	if loc == nil {
		loc = time.Local
	}
	return &Ledger{store: store, loc: loc, names: names, order: managers, now: time.Now, hub: hub}
}

// Today is the day's key ("2026-12-04") in the ledger's time zone.
func (l *Ledger) Today() string { return l.now().In(l.loc).Format(time.DateOnly) }

// Add tallies into today.
func (l *Ledger) Add(ctx context.Context, t Tally) error {
	if len(t.Counts) == 0 && t.Answerer == 0 {
		return nil
	}
	day := l.Today()
	if err := l.store.Add(ctx, day, t); err != nil {
		return fmt.Errorf("board: today's figures (%s): %w", day, err)
	}
	l.hub.Notify()
	return nil
}

// Figures are today's figures: every configured manager, then anyone else with figures
// (manager 0, "nobody's clients", last).
func (l *Ledger) Figures(ctx context.Context) (string, []Figures, error) {
	day := l.Today()
	d, err := l.store.Day(ctx, day)
	if err != nil {
		return day, nil, fmt.Errorf("board: today's figures (%s): %w", day, err)
	}
	ids := slices.Clone(l.order)
	var extra []crm.UserID
	for m := range d.Counts {
		if !slices.Contains(ids, m) {
			extra = append(extra, m)
		}
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i] != 0 && (extra[j] == 0 || extra[i] < extra[j]) })
	ids = append(ids, extra...)
	out := make([]Figures, 0, len(ids))
	for _, m := range ids {
		c := d.Counts[m]
		f := Figures{Manager: m, Name: l.names[m], Routed: c[FieldRouted], Answered: c[FieldAnswered],
			Missed: c[FieldMissed], TalkMS: c[FieldTalkMS], Chats: c[FieldChats], MedianAnswerMS: median(d.AnswerMS[m])}
		for k, n := range c {
			if r, ok := strings.CutPrefix(k, FallbackPrefix); ok {
				if f.Fallbacks == nil {
					f.Fallbacks = map[routing.Reason]int64{}
				}
				f.Fallbacks[routing.Reason(r)] += n
			}
		}
		out = append(out, f)
	}
	return day, out, nil
}

// median of milliseconds; the lower middle of an even count's two.
func median(ms []int64) int64 {
	if len(ms) == 0 {
		return 0
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}
