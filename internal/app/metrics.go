package app

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/crmlink/crmlink/board"
	"github.com/crmlink/crmlink/routing"
)

// metrics are what an operator graphs: decisions by outcome and how long they took.
type metrics struct {
	registry  *prometheus.Registry
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	outcomes  *prometheus.CounterVec
	managers  managerMetrics
	// notRecorded counts the client calls the call observer saw and recorded nothing of.
	notRecorded *prometheus.CounterVec
	gapChannels prometheus.Counter
}

// managerMetrics are the live page's "Today" figures as counters, per manager (label
// manager: the CRM user id; 0 for clients nobody owns), for Grafana (deploy/grafana/).
type managerMetrics struct {
	calls, fallbacks, talk, chats *prometheus.CounterVec
	answer                        *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmlink_route_decisions_total",
			Help: "Calls by the routing they got (result, fallback reason as in CRMLINK_REASON), where the owner came from and the Asterisk the call came through (its entity id over ARI, its systemname over FastAGI; empty when not told); with ARI counted when settled, so owner_unavailable and owner_no_answer after ringing count as FALLBACK. GET /v1/route is not counted.",
		}, []string{"result", "reason", "source", "asterisk"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crmlink_route_decision_seconds",
			Help:    "Time to decide, by where the owner came from (cache and index answers take microseconds; crm is a live lookup).",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"source"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmlink_calls_total",
			Help: "Finished calls by direction, whether the client talked to somebody and the Asterisk the call was on (its entity id; empty when not told).",
		}, []string{"direction", "answered", "asterisk"}),
		notRecorded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmlink_observer_calls_not_recorded_total",
			Help: "Calls the call observer records nothing of, by why: withheld (the caller id is withheld or no number: nobody to find or call back) or unobserved (the call ended while the observer's ARI websocket was down).",
		}, []string{"reason"}),
		gapChannels: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crmlink_observer_unobserved_channels_total",
			Help: "Channels Asterisk created and destroyed while the call observer's ARI websocket was down, from the gaps in Asterisk's channel ids: the calls they belonged to began and ended unseen and are not recorded (a call has one channel or more, so this bounds their number from above).",
		}),
	}
	m.managers = managerMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmlink_manager_calls_total",
			Help: "Incoming calls per manager: routed (their phones rang), answered (they talked), missed (routed to them, not answered by them).",
		}, []string{"manager", "outcome"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmlink_manager_fallbacks_total",
			Help: "Calls of a manager's clients that went to the fallback, by reason (manager 0: clients nobody owns, unknown numbers).",
		}, []string{"manager", "reason"}),
		talk: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmlink_manager_talk_seconds_total",
			Help: "Time a manager talked with clients, incoming and outgoing.",
		}, []string{"manager"}),
		chats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmlink_manager_chats_assigned_total",
			Help: "Chats made a manager's (responsible sync, online-chat leads).",
		}, []string{"manager"}),
		answer: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crmlink_manager_answer_seconds",
			Help:    "How long a manager's phone rang before they answered an incoming call.",
			Buckets: []float64{1, 2, 3, 5, 8, 10, 15, 20, 30, 45, 60},
		}, []string{"manager"}),
	}
	mm := m.managers
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), m.decisions, m.latency, m.outcomes,
		mm.calls, mm.fallbacks, mm.talk, mm.chats, mm.answer, m.notRecorded, m.gapChannels)
	return m
}

// tally counts what an event added to its managers' day: the same tally the live page
// keeps, so the two agree.
func (m *metrics) tally(t board.Tally) {
	for _, c := range t.Counts {
		id := strconv.FormatInt(int64(c.Manager), 10)
		switch {
		case c.Field == board.FieldTalkMS:
			m.managers.talk.WithLabelValues(id).Add(float64(c.N) / 1000)
		case c.Field == board.FieldChats:
			m.managers.chats.WithLabelValues(id).Add(float64(c.N))
		case strings.HasPrefix(c.Field, board.FallbackPrefix):
			m.managers.fallbacks.WithLabelValues(id, strings.TrimPrefix(c.Field, board.FallbackPrefix)).Add(float64(c.N))
		default:
			m.managers.calls.WithLabelValues(id, c.Field).Add(float64(c.N))
		}
	}
	if t.Answerer != 0 {
		m.managers.answer.WithLabelValues(strconv.FormatInt(int64(t.Answerer), 10)).Observe(t.Answer.Seconds())
	}
}

// observe counts the routing a call got: the decision FastAGI and the SIP redirect hand to
// the dialplan, or what the ARI controller settled on after ringing. It runs on the call
// path and only counts.
// Inquiries (GET /v1/route) are not calls: a script asking for numbers must not show up
// as calls falling back.
func (m *metrics) observe(c routing.Call, d routing.Decision) {
	if c.Inquiry {
		return
	}
	m.decisions.WithLabelValues(string(d.Result), string(d.Reason), string(d.Source), c.Asterisk).Inc()
	m.latency.WithLabelValues(string(d.Source)).Observe(d.Latency.Seconds())
}
