package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/httpapi"
	"github.com/crmlink/crmlink/internal/queue"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/scenarios"
)

// eventPath is the event path: call outcomes, chat events and CRM changes are queued
// durably, then one dispatcher hands each to the handler of its kind (the rules engine
// for calls, the chat side for the others).
type eventPath struct {
	queue queue.Queue
	// engine is swapped by a configuration reload; build makes one for other scenarios
	// on the same CRM and State.
	engine scenarios.Current
	build  func(scenarios.Config) (*scenarios.Engine, error)
	closer func() error
	// dispatch decodes each stored event once and calls the handler of its kind.
	dispatch *events.Dispatcher
	// calls encodes call outcomes with their order key.
	calls events.Type[routing.CallOutcome]
	// state is the idempotency state the rules engine and the online-chat leads share.
	state events.State
	// files is the state under data_dir; nil with Redis.
	files *fileState
}

// newEvents builds the queue (Redis Streams with Redis, files under data_dir without) and
// the rules engine with its idempotency state; nil without a CRM, when calls create
// nothing.
func (p *App) newEvents() (*eventPath, error) {
	cfg := p.cfg
	if p.crm == nil {
		return nil, nil
	}
	ev := &eventPath{closer: func() error { return nil },
		dispatch: events.NewDispatcher(p.log.With().Str("component", "events").Logger()),
		calls:    events.CallOutcomes(crm.NewPhoneMemo(cfg.Routing.DefaultRegion))}
	opts := queue.Options{
		Concurrency: cfg.Queue.Workers,
		RetryFor:    cfg.Queue.RetryFor,
		OrderKey:    func(e queue.Event) string { return ev.dispatch.OrderKey(e.Envelope()) },
		Logger:      p.log.With().Str("component", "queue").Logger(),
	}
	var err error
	if p.redis != nil {
		consumer := cfg.Queue.Consumer
		if consumer == "" {
			consumer, _ = os.Hostname()
		}
		ev.queue, err = queue.NewRedis(p.redis, queue.RedisOptions{Options: opts, Consumer: consumer, WaitReplicas: cfg.Queue.WaitReplicas})
		if err == nil {
			p.warnRedisPersistence()
		}
	} else {
		// A data_dir that is full, read-only or damaged must not stop routing: the queue
		// opens when it can and refuses events until then.
		ev.queue, err = queue.OpenDisk(filepath.Join(cfg.DataDir, "queue"), queue.DiskOptions{Options: opts})
	}
	if err != nil {
		return nil, fmt.Errorf("event queue: %w", err)
	}
	var state events.State
	if p.redis != nil {
		// The same replicas as the queue's: a step's record or begun mark the master alone
		// held would be lost in a failover, and the next attempt would write again.
		state = events.NewRedisState(p.redis, "", events.WaitReplicas(cfg.Queue.WaitReplicas, 0))
	} else {
		ev.files = &fileState{path: filepath.Join(cfg.DataDir, "rules-state.jsonl")}
		_, _ = ev.files.get()
		state, ev.closer = ev.files, ev.files.close
	}
	ev.state = state
	// The rules engine reads and writes at background priority: call-path lookups go first.
	ev.build = func(sc scenarios.Config) (*scenarios.Engine, error) {
		return scenarios.New(sc, p.crm, p.crm, state, scenarios.WithClients(&p.router),
			scenarios.WithRegion(cfg.Routing.DefaultRegion), scenarios.WithRecordingLink(p.recordingLinker()),
			scenarios.WithLogger(p.log.With().Str("component", "rules").Logger()))
	}
	engine, err := ev.build(cfg.Scenarios)
	if err != nil {
		_ = ev.queue.Close()
		return nil, fmt.Errorf("scenarios: %w", err)
	}
	ev.engine.Store(engine)
	events.On(ev.dispatch, ev.calls, ev.engine.HandleOutcome)
	p.outbox.Open(ev.calls, queue.Store(ev.queue))
	// Until newChat registers the chat side, its events have nobody to act on them.
	events.On(ev.dispatch, chatbridge.ChatEvents, func(_ context.Context, e chatbridge.Event) error {
		return events.Permanent(fmt.Errorf("%s event %s: no chat platform is configured (chat.platforms)", events.KindChat, e.ID))
	})
	events.On(ev.dispatch, events.CRMChanges, func(_ context.Context, c events.CRMChange) error {
		return events.Permanent(fmt.Errorf("%s event %s %d: no chat platform is configured (chat.platforms)", events.KindCRMChange, c.Entity, c.ID))
	})
	return ev, nil
}

// warnRedisPersistence says at start what a restart of Redis would lose of the queue: the
// queue is only as durable as the server's persistence, which crmlink cannot set itself.
func (p *App) warnRedisPersistence() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if ok, detail := p.redisPersistence(ctx); !ok {
		p.log.Warn().Msg(detail)
	} else {
		p.log.Info().Str("redis_persistence", detail).Msg("event queue on Redis with an append-only file")
	}
}

// redisPersistence is also the /healthz check: not required (calls are routed either way),
// but visible until the administrator fixes it.
func (p *App) redisPersistence(ctx context.Context) (bool, string) {
	pers, err := queue.ReadRedisPersistence(ctx, p.redis)
	switch {
	case err != nil:
		return false, err.Error() + ": the event queue is only as durable as the Redis server's persistence (docs/deploy.md, \"Data safety\")"
	case pers.Risk() != "":
		return false, pers.Risk()
	}
	return true, pers.String()
}

// store queues an encoded event; it returns once the event is durably stored.
func (ev *eventPath) store(ctx context.Context, e events.Envelope) error {
	return queue.Store(ev.queue)(ctx, e)
}

func (ev *eventPath) close() error {
	qerr := ev.queue.Close()
	return errors.Join(qerr, ev.closer())
}

// storeHealth is nil while the event path's files under data_dir take writes; with Redis
// the redis check covers the event store.
func (ev *eventPath) storeHealth() error {
	if h, ok := ev.queue.(interface{ Health() error }); ok {
		if err := h.Health(); err != nil {
			return err
		}
	}
	if ev.files != nil {
		return ev.files.health()
	}
	return nil
}

// eventStoreCheck reports the event store in /healthz and as a metric. It is not a
// required check: routing works without the event store, so /healthz stays 200 for a
// load balancer, and the check says the store failed.
func (p *App) eventStoreCheck(api *httpapi.Server) {
	ev := p.events
	if ev == nil || ev.files == nil {
		return
	}
	p.metrics.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "crmlink_event_store_up",
		Help: "1 while the event queue and rules state under data_dir take writes; 0 while they fail (full, read-only or damaged disk): routing goes on, events are refused.",
	}, func() float64 {
		if ev.storeHealth() != nil {
			return 0
		}
		return 1
	}))
	api.AddCheck(httpapi.Check{Name: "event_store", State: func(context.Context) (bool, string) {
		if err := ev.storeHealth(); err != nil {
			return false, "failed, events refused until it works again: " + err.Error()
		}
		return true, "writable"
	}})
}

// runEvents runs the queue until ctx ends, apart from the front ends: a failing event
// store never stops routing. A Run that fails is started again after a backoff. The
// returned channel closes when the queue has stopped.
func (p *App) runEvents(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	if p.events == nil {
		close(done)
		return done
	}
	h := queue.Deliver(p.events.dispatch.Handle)
	go func() {
		defer close(done)
		for n := 1; ; n++ {
			err := p.events.queue.Run(ctx, h)
			if ctx.Err() != nil {
				return
			}
			delay := queue.StoreBackoff(n)
			p.log.Error().Err(err).Dur("retry_in", delay).Msg("event queue stopped; routing goes on, starting it again")
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
	}()
	return done
}

// fileState is the rules engine's idempotency state under data_dir, opened when it can
// be: a data_dir that is full or read-only at start must not stop crmlink, so the calls
// that need the state open it, at most once per backoff; until it opens they fail and
// the queue retries their events.
type fileState struct {
	path  string
	mu    sync.Mutex
	s     *events.FileState
	err   error
	tries int
	next  time.Time
}

var _ events.State = (*fileState)(nil)

func (f *fileState) get() (*events.FileState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.s != nil {
		return f.s, nil
	}
	if time.Now().Before(f.next) {
		return nil, f.err
	}
	s, err := events.OpenFileState(f.path)
	if err != nil {
		f.tries++
		f.err, f.next = err, time.Now().Add(queue.StoreBackoff(f.tries))
		return nil, err
	}
	f.s, f.err = s, nil
	return s, nil
}

// health tries to open the state too (within the backoff), so that a data_dir that is
// writable again shows as such before the next event needs the state.
func (f *fileState) health() error {
	_, err := f.get()
	return err
}

func (f *fileState) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.s == nil {
		return nil
	}
	return f.s.Close()
}

func (f *fileState) Done(ctx context.Context, key string) (bool, error) {
	s, err := f.get()
	if err != nil {
		return false, err
	}
	return s.Done(ctx, key)
}

func (f *fileState) MarkDone(ctx context.Context, key string, ttl time.Duration) error {
	s, err := f.get()
	if err != nil {
		return err
	}
	return s.MarkDone(ctx, key, ttl)
}

func (f *fileState) Save(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s, err := f.get()
	if err != nil {
		return err
	}
	return s.Save(ctx, key, value, ttl)
}

func (f *fileState) Load(ctx context.Context, key string) ([]byte, bool, error) {
	s, err := f.get()
	if err != nil {
		return nil, false, err
	}
	return s.Load(ctx, key)
}

func (f *fileState) TaskUntil(ctx context.Context, phone crm.Phone) (time.Time, error) {
	s, err := f.get()
	if err != nil {
		return time.Time{}, err
	}
	return s.TaskUntil(ctx, phone)
}

func (f *fileState) ClaimTask(ctx context.Context, phone crm.Phone, claimant string, now, until time.Time, ttl time.Duration) (time.Time, error) {
	s, err := f.get()
	if err != nil {
		return time.Time{}, err
	}
	return s.ClaimTask(ctx, phone, claimant, now, until, ttl)
}

func (f *fileState) ReleaseTask(ctx context.Context, phone crm.Phone, claimant string) error {
	s, err := f.get()
	if err != nil {
		return err
	}
	return s.ReleaseTask(ctx, phone, claimant)
}
