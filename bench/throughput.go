package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/crm/amocrm"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/app"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/queue"
	"github.com/crmlink/crmlink/routing"
)

// The "CRM throughput" stretch: call outcomes handed to the event path all at once, each
// carrying its routing decision as after a real routed call, against an amoCRM sandbox that
// enforces its rate limit with 429s. It measures how long until every outcome is in amoCRM
// and what that cost in requests: amoCRM's 7 requests a second are what limits a call centre.

// OutcomeKind is one kind of call in the stretch's mix.
type OutcomeKind string

const (
	KnownAnswered   OutcomeKind = "known_answered"   // a client with an open deal, routed to the owner, who answered
	UnknownAnswered OutcomeKind = "unknown_answered" // a new number, answered at the operator desk
	KnownMissed     OutcomeKind = "known_missed"     // routed to the owner, nobody answered
	UnknownMissed   OutcomeKind = "unknown_missed"   // a new number nobody answered
)

// ThroughputMix is the mix: known answered 60 %, unknown answered 20 %, missed
// 20 % (half of them from known clients).
func ThroughputMix(n int) []OutcomeKind {
	out := make([]OutcomeKind, n)
	for i := range out {
		switch i % 10 {
		case 6, 7:
			out[i] = UnknownAnswered
		case 8:
			out[i] = KnownMissed
		case 9:
			out[i] = UnknownMissed
		default:
			out[i] = KnownAnswered
		}
	}
	return out
}

// ThroughputOptions say where the stretch's crmlink keeps its queue and cache.
type ThroughputOptions struct {
	RedisAddr string
	RedisDB   int // flushed first
	// RateLimit is the sandbox's requests per sliding second (amoCRM: 7) and crmlink's
	// amocrm.rate_limit.
	RateLimit int
	// Timeout bounds the wait for every outcome to be in the sandbox.
	Timeout time.Duration
	// Workers is queue.workers (0: crmlink's default).
	Workers int
	Log     zerolog.Logger
}

// ThroughputRun is one handing-over of outcomes and what amoCRM saw.
type ThroughputRun struct {
	Outcomes int                 `json:"outcomes"`
	Mix      map[OutcomeKind]int `json:"mix"`
	// Seconds is from the hand-over until the last outcome's note was in the sandbox.
	Seconds float64 `json:"seconds"`
	// Done is how many outcomes got their note within the timeout.
	Done int `json:"done"`
	// Requests are the amoCRM requests the event path sent, by "METHOD path".
	Requests map[string]int `json:"requests"`
	// RequestsPerOutcome is their sum over Outcomes.
	RequestsPerOutcome float64 `json:"requests_per_outcome"`
	// RateLimited is how many requests the sandbox answered 429.
	RateLimited int `json:"rate_limited"`
	// Duplicates are entities created twice: a second note of one call, contact of one
	// number, deal or task for one call.
	Duplicates int `json:"duplicates"`
}

// RequestTotal is the sum of Requests.
func (r ThroughputRun) RequestTotal() int { return sum(r.Requests) }

// Throughput numbers: the account's rate, the bench's managers and caller numbers.
const (
	throughputToken = "throughput-token"
	// decideWorkers make the routing decisions before the stretch (its lookups are not
	// measured: the sandbox's limit is off while they run).
	decideWorkers = 16
)

func knownThroughputNumber(i int) string   { return fmt.Sprintf("7499100%04d", i+1) }
func unknownThroughputNumber(i int) string { return fmt.Sprintf("7499200%04d", i+1) }

// throughputSeed is an account where every known caller has a contact with one open deal.
func throughputSeed(known int, rate int) sandbox.Seed {
	s := sandbox.Seed{
		Token: throughputToken, RateLimit: rate, APIUserID: 1,
		Users: []sandbox.User{{ID: 1, Name: "Integration"}, {ID: manager1, Name: "Manager 1"}, {ID: manager2, Name: "Manager 2"}},
	}
	for i := range known {
		owner := int64(manager1 + i%2)
		cid, lid := int64(10_000+i), int64(20_000+i)
		s.Contacts = append(s.Contacts, sandbox.Contact{ID: cid, Name: fmt.Sprint("Client ", i), ResponsibleUserID: owner,
			Phones: []string{cardPhone(knownThroughputNumber(i))}, LeadIDs: []int64{lid}})
		s.Leads = append(s.Leads, sandbox.Lead{ID: lid, Name: fmt.Sprint("Order ", i), PipelineID: sandbox.DefaultPipelineID,
			StatusID: sandbox.DefaultStatusID, ResponsibleUserID: owner})
	}
	return s
}

// RunThroughput hands the outcomes of mix to a crmlink event path at once and waits until
// every one is in the sandbox.
func RunThroughput(ctx context.Context, opts ThroughputOptions, mix []OutcomeKind) (ThroughputRun, error) {
	run := ThroughputRun{Outcomes: len(mix), Mix: map[OutcomeKind]int{}}
	for _, k := range mix {
		run.Mix[k]++
	}
	rate := opts.RateLimit
	if rate == 0 {
		rate = sandbox.DefaultRateLimit
	}
	rdb := redis.NewClient(&redis.Options{Addr: opts.RedisAddr, DB: opts.RedisDB})
	defer rdb.Close()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return run, fmt.Errorf("throughput: flush redis db %d: %w", opts.RedisDB, err)
	}
	sb := sandbox.New(throughputSeed(len(mix), -1))
	defer sb.Close()
	srv := httptest.NewServer(sb)
	defer srv.Close()

	outcomes, err := routedOutcomes(ctx, srv.URL, rdb, mix)
	if err != nil {
		return run, err
	}

	dataDir, err := os.MkdirTemp("", "crmlink-throughput-")
	if err != nil {
		return run, err
	}
	defer os.RemoveAll(dataDir)
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.Asterisk.ARI.Enabled, cfg.AGI.Enabled, cfg.SIP.Enabled = false, false, false
	cfg.AmoCRM.BaseURL, cfg.AmoCRM.Token, cfg.AmoCRM.RateLimit = srv.URL, throughputToken, float64(rate)
	cfg.Redis.Addrs, cfg.Redis.DB = []string{opts.RedisAddr}, opts.RedisDB
	cfg.Queue.Consumer = "throughput"
	if opts.Workers > 0 {
		cfg.Queue.Workers = opts.Workers
	}
	cfg.Managers = throughputManagers()
	if errs := cfg.Validate(); len(errs) > 0 {
		return run, fmt.Errorf("throughput: crmlink config: %s", strings.Join(errs, "; "))
	}
	a, err := app.New(cfg, opts.Log)
	if err != nil {
		return run, fmt.Errorf("throughput: start crmlink: %w", err)
	}
	defer a.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return run, err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- a.Serve(sctx, l) }()
	defer func() { stop(); <-served }()

	// The account's own limit from here on, and only the event path's requests counted.
	sb.SetRateLimit(rate)
	sb.ResetCounters()
	q, err := queue.NewRedis(rdb, queue.RedisOptions{})
	if err != nil {
		return run, err
	}
	start := time.Now()
	for _, o := range outcomes {
		payload, err := json.Marshal(o)
		if err != nil {
			return run, err
		}
		if err := q.Publish(ctx, queue.Event{ID: o.ID, Kind: "call_outcome", Payload: payload}); err != nil {
			return run, fmt.Errorf("throughput: queue outcome %s: %w", o.ID, err)
		}
	}
	_ = q.Close()

	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	for {
		run.Done = noted(sb.Created(), outcomes)
		if run.Done == len(outcomes) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	run.Seconds = time.Since(start).Seconds()
	// Writes still under way would be missed by the counts: let the path go quiet.
	time.Sleep(500 * time.Millisecond)
	run.Requests = sb.RequestCounts()
	run.RequestsPerOutcome = float64(run.RequestTotal()) / float64(max(len(outcomes), 1))
	run.RateLimited = sb.RateLimited()
	run.Duplicates = duplicates(sb.Created())
	if run.Done < len(outcomes) {
		return run, fmt.Errorf("throughput: %d of %d outcomes in the sandbox after %s", run.Done, len(outcomes), timeout)
	}
	return run, ctx.Err()
}

func throughputManagers() []config.Manager {
	return []config.Manager{
		{CRMUser: manager1, Name: "Manager 1", Endpoints: []string{"PJSIP/bench-mgr1"}},
		{CRMUser: manager2, Name: "Manager 2", Endpoints: []string{"PJSIP/bench-mgr2"}},
	}
}

// routedOutcomes routes every call of the mix with a Router on the stretch's Redis cache, as
// crmlink's front ends do (the cache entries are what tells the event path the decisions
// still hold), and builds the outcomes the Stasis controller would report.
func routedOutcomes(ctx context.Context, crmURL string, rdb *redis.Client, mix []OutcomeKind) ([]routing.CallOutcome, error) {
	client, err := amocrm.New(amocrm.Options{BaseURL: crmURL, Token: throughputToken, RateLimit: 10_000})
	if err != nil {
		return nil, err
	}
	var managers []routing.Manager
	for _, m := range throughputManagers() {
		managers = append(managers, routing.Manager{CRMUser: m.CRMUser, Name: m.Name, Endpoints: m.Endpoints})
	}
	r, err := routing.New(routing.Options{Directory: client, Cache: routing.NewRedisCache(rdb, routing.DefaultRedisPrefix),
		Enabled: true, Managers: managers, LookupTimeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	out := make([]routing.CallOutcome, len(mix))
	errs := make([]error, len(mix))
	next := make(chan int)
	var wg sync.WaitGroup
	for range decideWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i], errs[i] = routedOutcome(ctx, r, i, mix[i])
			}
		}()
	}
	for i := range mix {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, errors.Join(errs...)
}

func routedOutcome(ctx context.Context, r *routing.Router, i int, kind OutcomeKind) (routing.CallOutcome, error) {
	number := knownThroughputNumber(i)
	if kind == UnknownAnswered || kind == UnknownMissed {
		number = unknownThroughputNumber(i)
	}
	id := fmt.Sprintf("1765000000.%d", i)
	d := r.Decide(ctx, routing.Call{Caller: number, Called: "200", LinkedID: id})
	end := time.Now()
	o := routing.CallOutcome{ID: id, Direction: routing.Incoming, Caller: number, Called: "200", Decision: d,
		FirstOperator: d.Owner, RingDuration: 8 * time.Second, Start: end.Add(-time.Minute)}
	known := kind == KnownAnswered || kind == KnownMissed
	switch {
	case known && d.Result != routing.Routed:
		return o, fmt.Errorf("throughput: known caller %s not routed: %s", number, d.Reason)
	case !known && d.Reason != routing.ReasonNotFound:
		return o, fmt.Errorf("throughput: new caller %s: reason %q, want not_found", number, d.Reason)
	}
	switch kind {
	case KnownAnswered:
		o.Answered, o.AnsweredBy, o.TalkDuration = true, d.Owner, 52*time.Second
	case UnknownAnswered:
		o.Answered, o.TalkDuration, o.FirstOperator = true, 52*time.Second, manager1
	case KnownMissed:
		// The owner's phones rang out; the Stasis controller reports the fallback reason.
		o.Decision.Result, o.Decision.Reason = routing.Fallback, routing.ReasonOwnerNoAnswer
	}
	return o, nil
}

// noted counts the outcomes whose call note is in the account: the note is each plan's
// last action.
func noted(c sandbox.Created, outcomes []routing.CallOutcome) int {
	have := map[string]bool{}
	for _, n := range c.Notes {
		have[n.Params.Uniq] = true
	}
	done := 0
	for _, o := range outcomes {
		if have[o.ID] {
			done++
		}
	}
	return done
}

// duplicates counts what was created more than once: notes of one call, contacts of one
// number, deals of one contact, tasks on one entity.
func duplicates(c sandbox.Created) int {
	n := 0
	count := func(keys []string) {
		seen := map[string]int{}
		for _, k := range keys {
			seen[k]++
			if seen[k] > 1 {
				n++
			}
		}
	}
	var notes, contacts, leads, tasks []string
	for _, x := range c.Notes {
		notes = append(notes, x.Params.Uniq)
	}
	for _, x := range c.Contacts {
		contacts = append(contacts, strings.Join(slices.Sorted(slices.Values(x.Phones)), ","))
	}
	for _, x := range c.Leads {
		leads = append(leads, fmt.Sprint(x.ContactIDs))
	}
	for _, x := range c.Tasks {
		tasks = append(tasks, fmt.Sprint(x.EntityType, x.EntityID))
	}
	count(notes)
	count(contacts)
	count(leads)
	count(tasks)
	return n
}

// CRMThroughputName is the stretch's name for -paths.
const CRMThroughputName = "crm-throughput"

// Throughput targets (issue 13).
const (
	throughputOutcomes      = 1000
	throughputQuickOutcomes = 300
	maxThroughputSeconds    = 30.0
	maxKnownAnsweredCost    = 0.1
)

// ThroughputReport is the "CRM throughput" stretch: the mix at once, then each kind on its
// own for its cost in requests (requests of a mixed run carry several kinds at once).
type ThroughputReport struct {
	Mixed   ThroughputRun                 `json:"mixed"`
	PerKind map[OutcomeKind]ThroughputRun `json:"per_kind"`
	Pass    bool                          `json:"pass"`
	Error   string                        `json:"error,omitempty"`
}

// runThroughput runs the stretch holding the rig lock (it takes the rig's Redis db 0).
func (r *runner) runThroughput(ctx context.Context) *ThroughputReport {
	n := throughputOutcomes
	if r.opts.Quick {
		n = throughputQuickOutcomes
	}
	rep := &ThroughputReport{PerKind: map[OutcomeKind]ThroughputRun{}}
	opts := ThroughputOptions{RedisAddr: rigRedis, Timeout: 2 * time.Minute}
	r.say("%s: %d routed call outcomes at once, amoCRM at %d requests/s", CRMThroughputName, n, sandbox.DefaultRateLimit)
	err := r.locked(ctx, func() error {
		mix := ThroughputMix(n)
		var err error
		if rep.Mixed, err = RunThroughput(ctx, opts, mix); err != nil {
			return err
		}
		for _, kind := range []OutcomeKind{KnownAnswered, UnknownAnswered, KnownMissed, UnknownMissed} {
			one := slices.Repeat([]OutcomeKind{kind}, rep.Mixed.Mix[kind])
			run, err := RunThroughput(ctx, opts, one)
			rep.PerKind[kind] = run
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		rep.Error = err.Error()
	}
	rep.judge()
	m := rep.Mixed
	r.say("%s: %d outcomes in %.1f s, %d requests, %d 429s, %d duplicates", CRMThroughputName, m.Done, m.Seconds, m.RequestTotal(), m.RateLimited, m.Duplicates)
	return rep
}

// judge sets Pass from the targets.
func (t *ThroughputReport) judge() {
	m := t.Mixed
	known, ok := t.PerKind[KnownAnswered]
	t.Pass = t.Error == "" && ok && m.Done == m.Outcomes && m.Seconds <= maxThroughputSeconds && m.RateLimited == 0 &&
		m.Duplicates == 0 && known.RequestsPerOutcome <= maxKnownAnsweredCost
}

// markdown is the report's section.
func (t *ThroughputReport) markdown(b *strings.Builder) {
	m := t.Mixed
	fmt.Fprintf(b, "## CRM throughput\n\n%d routed call outcomes handed to the event path at once (%s), each carrying what its routing decision found; the amoCRM sandbox enforces %d requests a second with 429s, crmlink keeps 2 of them for calls. Targets: all in amoCRM within %.0f s, at most %.1f requests per known answered call, no 429, no duplicate.\n\n",
		m.Outcomes, mixText(m.Mix), sandbox.DefaultRateLimit, maxThroughputSeconds, maxKnownAnsweredCost)
	if t.Error != "" {
		fmt.Fprintf(b, "**Did not complete:** %s\n\n", t.Error)
	}
	b.WriteString("| run | outcomes | in amoCRM after | requests | per outcome | 429s | duplicates | requests by endpoint |\n|---|---|---|---|---|---|---|---|\n")
	row := func(name string, r ThroughputRun) {
		var by []string
		for _, k := range slices.Sorted(maps.Keys(r.Requests)) {
			by = append(by, fmt.Sprintf("%s %d", k, r.Requests[k]))
		}
		fmt.Fprintf(b, "| %s | %d | %.1f s | %d | %.3f | %d | %d | %s |\n", name, r.Outcomes, r.Seconds, r.RequestTotal(),
			r.RequestsPerOutcome, r.RateLimited, r.Duplicates, strings.Join(by, ", "))
	}
	row("mixed, at once", m)
	for _, k := range []OutcomeKind{KnownAnswered, UnknownAnswered, KnownMissed, UnknownMissed} {
		if r, ok := t.PerKind[k]; ok {
			row(string(k)+" alone", r)
		}
	}
	verdict := "**pass**"
	if !t.Pass {
		verdict = "**FAIL**"
	}
	fmt.Fprintf(b, "\n%s: %.1f s for all %d (target ≤ %.0f s), %.3f requests per known answered call (target ≤ %.1f), %d 429s, %d duplicates.\n\n",
		verdict, m.Seconds, m.Outcomes, maxThroughputSeconds, t.PerKind[KnownAnswered].RequestsPerOutcome, maxKnownAnsweredCost, m.RateLimited, m.Duplicates)
}

func mixText(mix map[OutcomeKind]int) string {
	var parts []string
	for _, k := range []OutcomeKind{KnownAnswered, UnknownAnswered, KnownMissed, UnknownMissed} {
		if mix[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", mix[k], strings.ReplaceAll(string(k), "_", " ")))
		}
	}
	return strings.Join(parts, ", ")
}
