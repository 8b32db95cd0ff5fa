package routing

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/crmlink/crmlink/crm"
)

// Options configure a Router. Zero durations, an empty precedence and an empty region take
// the package defaults below, so a test sets only what it is about.
type Options struct {
	// Directory is the CRM read side; nil means no CRM is configured and every call falls
	// back with reason disabled.
	Directory crm.Directory
	// InquiryDirectory is the CRM read side for inquiries (Call.Inquiry) and for the call
	// scenarios' lookups (ResolveClient); it should not take the requests kept for calls
	// (amoCRM: the client without the call priority). nil means Directory.
	InquiryDirectory crm.Directory
	// Cache holds owners between calls; nil means an in-process MemoryCache.
	Cache OwnerCache
	// Managers map CRM users to the endpoints that ring for them and their schedules.
	Managers []Manager
	// Precedence orders whose responsible user is the owner (default lead, contact, company).
	Precedence []crm.EntityType
	// LookupTimeout bounds the whole decision, presence included (default 1.5s).
	LookupTimeout time.Duration
	// CacheTTL is how long a found owner is trusted without a webhook (default 6h).
	CacheTTL time.Duration
	// NegativeTTL is how long "no contact has this number" is remembered (default 5m).
	NegativeTTL time.Duration
	// Region is the ISO country for numbers without a country code (default RU).
	Region string
	// Enabled switches routing on; off, every call falls back with reason disabled.
	Enabled bool
	// CheckManagerStatus makes the schedule, the manual status and presence count.
	CheckManagerStatus bool
	// Presence reports endpoint state; nil means endpoints are taken as online.
	Presence Presence
	// Now is the clock for cache expiry and schedules (time.Now when nil). Deadlines always
	// use the real clock: a test clock must not stretch how long a caller waits.
	Now func() time.Time
	// Logger gets per-call debug lines and warnings; the zero Logger discards them.
	Logger zerolog.Logger
	// OnDecision, when set, sees every decision after it is made (metrics). It runs on the
	// call path and must not block.
	OnDecision func(Call, Decision)
}

// Router answers Decide for every PBX front end. It is safe for concurrent use.
type Router struct {
	dir         crm.Directory
	inquiryDir  crm.Directory
	inquiries   *rate.Limiter
	cache       OwnerCache
	cacheLocal  bool        // the cache never blocks: read it in place
	guard       *cacheGuard // the call path's way to a cache that may block (Redis)
	managers    map[crm.UserID]*manager
	resolver    // region and precedence
	lookup      time.Duration
	cacheTTL    time.Duration
	negativeTTL time.Duration
	phones      *crm.PhoneMemo
	enabled     bool
	checkStatus bool
	presence    Presence
	now         func() time.Time
	log         zerolog.Logger
	onDecision  func(Call, Decision)

	// flight makes concurrent lookups of one number share one CRM request.
	flight singleflight.Group

	// writeMu orders cache writes: live lookups store under the read lock, webhook updates
	// hold the write lock, so a lookup that read the CRM before a webhook cannot overwrite
	// the webhook's answer (see changes).
	writeMu sync.RWMutex
	epoch   atomic.Uint64
	changes map[string]change // entity or phone -> last change, guarded by writeMu

	availMu sync.RWMutex
	avail   map[crm.UserID]Availability
}

// change marks an entity or phone a webhook touched, so a lookup that started before it
// does not store what it read.
type change struct {
	epoch uint64
	at    time.Time // real time, for pruning
}

type manager struct {
	user      crm.UserID
	name      string
	label     string // "CRM user 42 Lena", built once for the owner step
	endpoints []string
	schedule  Schedule
}

var _ Decider = (*Router)(nil)

// New checks the options, fills defaults and returns a Router. Errors name the option and
// say what to do, because they reach the administrator through `check-config`.
func New(opts Options) (*Router, error) {
	r := &Router{
		dir:         opts.Directory,
		inquiryDir:  opts.InquiryDirectory,
		inquiries:   newInquiryPacer(),
		cache:       opts.Cache,
		lookup:      opts.LookupTimeout,
		cacheTTL:    opts.CacheTTL,
		negativeTTL: opts.NegativeTTL,
		enabled:     opts.Enabled,
		checkStatus: opts.CheckManagerStatus,
		presence:    opts.Presence,
		now:         opts.Now,
		log:         opts.Logger,
		onDecision:  opts.OnDecision,
		managers:    make(map[crm.UserID]*manager, len(opts.Managers)),
		changes:     make(map[string]change),
		avail:       make(map[crm.UserID]Availability),
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"lookup timeout", &r.lookup, DefaultLookupTimeout},
		{"cache TTL", &r.cacheTTL, DefaultCacheTTL},
		{"negative TTL", &r.negativeTTL, DefaultNegativeTTL},
	} {
		if *d.v < 0 {
			return nil, fmt.Errorf("routing: %s is %s; use a positive duration or 0 for the default %s", d.name, *d.v, d.def)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	r.resolver = newResolver(opts.Region, opts.Precedence)
	for i, p := range r.precedence {
		if !validEntity(p) {
			return nil, fmt.Errorf("routing: precedence[%d] is %q; allowed: lead, contact, company", i, p)
		}
		if slices.Index(r.precedence, p) != i {
			return nil, fmt.Errorf("routing: precedence[%d] repeats %q; list each of lead, contact, company at most once", i, p)
		}
	}
	for i, m := range opts.Managers {
		user := crm.UserID(m.CRMUser)
		switch {
		case user <= 0:
			return nil, fmt.Errorf("routing: managers[%d].crm_user is %d; use the CRM user id, a positive number", i, m.CRMUser)
		case r.managers[user] != nil:
			return nil, fmt.Errorf("routing: managers[%d].crm_user %d is mapped twice; map each CRM user once", i, m.CRMUser)
		case len(m.Endpoints) == 0:
			return nil, fmt.Errorf("routing: managers[%d].endpoints is empty; list at least one dial string such as PJSIP/101", i)
		}
		sched, err := ParseSchedule(m.Schedule)
		if err != nil {
			return nil, fmt.Errorf("routing: managers[%d].schedule.%w", i, err)
		}
		r.managers[user] = &manager{
			user: user, name: m.Name, endpoints: slices.Clone(m.Endpoints), schedule: sched,
			label: strings.TrimSpace(fmt.Sprintf("CRM user %d %s", user, m.Name)),
		}
	}
	r.phones = crm.NewPhoneMemo(r.region)
	if r.inquiryDir == nil {
		r.inquiryDir = r.dir
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.cache == nil {
		r.cache = NewMemoryCache(0, r.now)
	}
	_, r.cacheLocal = r.cache.(interface{ inProcess() })
	r.guard = newCacheGuard(r.cache, r.lookup, &r.log)
	return r, nil
}

// SetManagerAvailability records a manager's manual status; Auto clears it. Unavailable
// sends the manager's calls to the fallback whatever the schedule and phones say (even with
// CheckManagerStatus off: it is a person's deliberate "not now", not an automatic signal);
// Available rings every endpoint whatever the schedule and presence say. The status is
// kept in this process.
func (r *Router) SetManagerAvailability(user crm.UserID, state Availability) error {
	if r.managers[user] == nil {
		return fmt.Errorf("routing: CRM user %d is not in managers; map the user before setting a status", user)
	}
	if state < Auto || state > Unavailable {
		return fmt.Errorf("routing: availability %d: allowed: auto, available, unavailable", int(state))
	}
	r.availMu.Lock()
	defer r.availMu.Unlock()
	if state == Auto {
		delete(r.avail, user)
	} else {
		r.avail[user] = state
	}
	return nil
}

// ManagerAvailability returns the manual status of a manager (Auto when none is set).
func (r *Router) ManagerAvailability(user crm.UserID) Availability {
	r.availMu.RLock()
	defer r.availMu.RUnlock()
	return r.avail[user]
}

// Decide answers for one call within the lookup timeout whatever the CRM, the cache or the
// presence source do. In order:
//   - routing off, no CRM or a withheld caller id: fallback disabled. A caller id that is
//     not a phone number: fallback not_found, because routing did look and no contact can
//     hold that number (disabled would tell the administrator routing is off);
//   - the owner chain from the cache (Source cache, or index once a webhook set it), else
//     from one live CRM lookup shared by every concurrent call from the number (Source
//     crm): not_found, no_owner, timeout or crm_error end here;
//   - the owner's managers entry: none is no_owner with Owner set;
//   - manual status, then with CheckManagerStatus the schedule and presence:
//     owner_unavailable, or Routed to the endpoints that are online, in configured order.
//
// A cancelled ctx (the caller hung up) ends the decision as a timeout.
func (r *Router) Decide(ctx context.Context, call Call) Decision {
	start := time.Now()
	log := callLog{log: &r.log, call: &call}
	d := r.decide(ctx, call, log)
	d.Latency = time.Since(start)
	log.Debug().Str("phone", string(d.Phone)).Str("result", string(d.Result)).Str("reason", string(d.Reason)).
		Int64("owner", int64(d.Owner)).Str("source", string(d.Source)).Int("targets", len(d.Targets)).
		Dur("latency", d.Latency).Msg("routing decision")
	if r.onDecision != nil {
		r.onDecision(call, d)
	}
	return d
}

func (r *Router) decide(ctx context.Context, call Call, log callLog) Decision {
	d := Decision{Steps: make([]Step, 0, 6)}
	t0 := time.Now()
	if !r.enabled || r.dir == nil {
		detail := "routing is switched off"
		if r.enabled {
			detail = "no CRM is configured"
		}
		return r.fallback(d, ReasonDisabled, "routing", detail, t0)
	}
	caller := strings.TrimSpace(call.Caller)
	if Withheld(caller) {
		return r.fallback(d, ReasonDisabled, "caller", "no caller number (anonymous)", t0)
	}
	phone, err := r.phones.Parse(caller)
	if err != nil {
		// Not "disabled": routing is on and looked; no contact can hold this number.
		return r.fallback(d, ReasonNotFound, "caller", err.Error(), t0)
	}
	d.Phone = phone
	d.Steps = append(d.Steps, Step{Name: "caller", Detail: string(phone), Duration: time.Since(t0)})

	// One deadline for everything that waits on the network: cache, CRM and presence.
	ctx, cancel := context.WithTimeout(ctx, r.lookup)
	defer cancel()

	e, src, reason := r.owner(ctx, phone, call.Inquiry, &d, log)
	d.Source = src
	if reason == ReasonNone || reason == ReasonNotFound {
		c := e.client()
		d.Client = &c
	}
	switch {
	case reason != ReasonNone:
		return r.fallback(d, reason, "", "", time.Time{})
	case !e.Found:
		return r.fallback(d, ReasonNotFound, "", "", time.Time{})
	}
	d.Owner = e.Owner
	t0 = time.Now()
	if e.Owner == 0 {
		return r.fallback(d, ReasonNoOwner, "owner", "no responsible user on the lead, contact or company", t0)
	}
	m := r.managers[e.Owner]
	if m == nil {
		return r.fallback(d, ReasonNoOwner, "owner", fmt.Sprintf("CRM user %d (from %s) has no managers entry", e.Owner, e.OwnerFrom), t0)
	}
	d.Steps = append(d.Steps, Step{Name: "owner", Detail: m.label + " (from " + string(e.OwnerFrom) + ")", Duration: time.Since(t0)})

	endpoints, reason := r.available(ctx, call.Asterisk, m, &d, log)
	if reason != ReasonNone {
		return r.fallback(d, reason, "", "", time.Time{})
	}
	d.Result = Routed
	d.Targets = make([]Target, len(endpoints))
	for i, ep := range endpoints {
		d.Targets[i] = Target{Endpoint: ep}
	}
	return d
}

// callLog adds the call's identifiers to a log line only when the line is written: a
// decision that logs nothing spends nothing on logging.
type callLog struct {
	log  *zerolog.Logger
	call *Call
}

func (l callLog) with(e *zerolog.Event) *zerolog.Event {
	return e.Str("caller", l.call.Caller).Str("channel_id", l.call.ChannelID).Str("linkedid", l.call.LinkedID)
}

// Debug starts a debug line about the call.
func (l callLog) Debug() *zerolog.Event { return l.with(l.log.Debug()) }

// Warn starts a warning about the call.
func (l callLog) Warn() *zerolog.Event { return l.with(l.log.Warn()) }

// fallback finishes a decision as a fallback, recording the final step when name is set.
func (r *Router) fallback(d Decision, reason Reason, name, detail string, t0 time.Time) Decision {
	if name != "" {
		d.Steps = append(d.Steps, Step{Name: name, Detail: detail, Duration: time.Since(t0)})
	}
	d.Result, d.Reason, d.Targets = Fallback, reason, nil
	return d
}

// available decides which of the manager's endpoints ring: all of them unless status
// checks say otherwise. A reason other than ReasonNone means the owner cannot take the call.
func (r *Router) available(ctx context.Context, asterisk string, m *manager, d *Decision, log callLog) ([]string, Reason) {
	t0 := time.Now()
	switch r.ManagerAvailability(m.user) {
	case Unavailable:
		d.Steps = append(d.Steps, Step{Name: "availability", Detail: "set unavailable by hand", Duration: time.Since(t0)})
		return nil, ReasonOwnerUnavailable
	case Available:
		d.Steps = append(d.Steps, Step{Name: "availability", Detail: "set available by hand: ringing every endpoint", Duration: time.Since(t0)})
		return m.endpoints, ReasonNone
	}
	if !r.checkStatus {
		return m.endpoints, ReasonNone
	}
	if !m.schedule.Available(r.now()) {
		d.Steps = append(d.Steps, Step{Name: "schedule", Detail: "off schedule", Duration: time.Since(t0)})
		return nil, ReasonOwnerUnavailable
	}
	if r.presence == nil {
		return m.endpoints, ReasonNone
	}
	t0 = time.Now()
	online, err := await(ctx, func() presenceAnswer {
		on, err := r.presence.EndpointsOnline(ctx, asterisk, slices.Clone(m.endpoints))
		return presenceAnswer{on, err}
	})
	if err == nil {
		online, err = online.checked(len(m.endpoints))
	}
	if err != nil {
		// Never block a call because presence failed: ring everything.
		log.Warn().Err(err).Int64("owner", int64(m.user)).Msg("presence unknown, ringing every endpoint")
		d.Steps = append(d.Steps, Step{Name: "presence", Detail: "unknown (" + err.Error() + "): ringing every endpoint", Duration: time.Since(t0)})
		return m.endpoints, ReasonNone
	}
	var ring []string
	for i, ep := range m.endpoints {
		if online.online[i] {
			ring = append(ring, ep)
		}
	}
	if len(ring) == 0 {
		d.Steps = append(d.Steps, Step{Name: "presence", Detail: "every endpoint offline", Duration: time.Since(t0)})
		return nil, ReasonOwnerUnavailable
	}
	d.Steps = append(d.Steps, Step{Name: "presence", Detail: fmt.Sprintf("%d of %d endpoints online", len(ring), len(m.endpoints)), Duration: time.Since(t0)})
	return ring, ReasonNone
}

type presenceAnswer struct {
	online []bool
	err    error
}

func (p presenceAnswer) checked(n int) (presenceAnswer, error) {
	if p.err != nil {
		return p, p.err
	}
	if len(p.online) != n {
		return p, fmt.Errorf("presence answered %d states for %d endpoints", len(p.online), n)
	}
	return p, nil
}

// await runs f on a goroutine and returns its value, or ctx's error once ctx is done: the
// call path never waits on a dependency that ignores its context. The goroutine is left to
// finish on its own; its result is dropped.
func await[T any](ctx context.Context, f func() T) (T, error) {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
