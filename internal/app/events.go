package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm"
	"github.com/crmlink/crmlink/internal/queue"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/routing/rules"
)

// kindCallOutcome is the queue event kind of a finished call.
const kindCallOutcome = "call_outcome"

// events is the event path: call outcomes are queued durably, then the rules engine turns
// each into CRM writes.
type events struct {
	queue queue.Queue
	// engine is swapped by a configuration reload; build makes one for other scenarios
	// on the same CRM and State.
	engine atomic.Pointer[rules.Engine]
	build  func(rules.Config) (*rules.Engine, error)
	closer func() error
	// chat handles chat events and CRM responsible changes; nil without chat platforms.
	chat queue.Handler
	// state is the idempotency state the rules engine and the online-chat leads share.
	state rules.State
}

// newEvents builds the queue (Redis Streams with Redis, files under data_dir without) and
// the rules engine with its idempotency state; nil without a CRM, when calls create
// nothing.
func (p *App) newEvents() (*events, error) {
	cfg := p.cfg
	if p.crm == nil {
		return nil, nil
	}
	opts := queue.Options{
		Concurrency: cfg.Queue.Workers,
		RetryFor:    cfg.Queue.RetryFor,
		OrderKey:    orderKey(crm.NewPhoneMemo(cfg.Routing.DefaultRegion)),
		Logger:      p.log.With().Str("component", "queue").Logger(),
	}
	ev := &events{closer: func() error { return nil }}
	var err error
	if p.redis != nil {
		consumer := cfg.Queue.Consumer
		if consumer == "" {
			consumer, _ = os.Hostname()
		}
		ev.queue, err = queue.NewRedis(p.redis, queue.RedisOptions{Options: opts, Consumer: consumer})
		if err == nil {
			p.warnRedisPersistence()
		}
	} else {
		ev.queue, err = queue.NewDisk(filepath.Join(cfg.DataDir, "queue"), queue.DiskOptions{Options: opts})
	}
	if err != nil {
		return nil, fmt.Errorf("event queue: %w", err)
	}
	var state rules.State
	if p.redis != nil {
		state = rules.NewRedisState(p.redis, "")
	} else {
		fs, err := rules.OpenFileState(filepath.Join(cfg.DataDir, "rules-state.jsonl"))
		if err != nil {
			_ = ev.queue.Close()
			return nil, err
		}
		state, ev.closer = fs, fs.Close
	}
	ev.state = state
	// The rules engine reads and writes at background priority: call-path lookups go first.
	ev.build = func(sc rules.Config) (*rules.Engine, error) {
		return rules.New(sc, p.crm, p.crm, state,
			rules.WithRegion(cfg.Routing.DefaultRegion), rules.WithLogger(p.log.With().Str("component", "rules").Logger()))
	}
	engine, err := ev.build(cfg.Scenarios)
	if err != nil {
		_ = ev.queue.Close()
		return nil, fmt.Errorf("scenarios: %w", err)
	}
	ev.engine.Store(engine)
	return ev, nil
}

// warnRedisPersistence says at start what a restart of Redis would lose of the queue: the
// queue is only as durable as the server's persistence, which crmlink cannot set itself.
func (p *App) warnRedisPersistence() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
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

// orderKey keeps one client's events in order, calls and chats alike: a call by the
// client's number, a chat by the visitor's phone (or the chat when it has none), both keyed
// "phone:<E.164>" so that a client's call and the chat that follows it meet on one key
// whichever way the number was written.
func orderKey(phones *crm.PhoneMemo) func(queue.Event) string {
	return func(e queue.Event) string {
		if e.Kind == kindCallOutcome {
			return orderByClient(e, phones)
		}
		return chatbridge.OrderKey(e)
	}
}

// orderByClient keeps one client's calls in order: the calls of one number reach the CRM
// one after the other, so a second missed call sees the first one's task. A number that
// does not parse (an internal extension, an anonymous caller) is its own key.
func orderByClient(e queue.Event, phones *crm.PhoneMemo) string {
	var o struct {
		Direction routing.Direction `json:"direction"`
		Caller    string            `json:"caller"`
		Called    string            `json:"called"`
	}
	if e.Kind != kindCallOutcome || json.Unmarshal(e.Payload, &o) != nil {
		return ""
	}
	number := o.Caller
	if o.Direction == routing.Outgoing {
		number = o.Called
	}
	if number == "" {
		return ""
	}
	if p, err := phones.Parse(number); err == nil {
		return chatbridge.PhoneOrderKey(p)
	}
	return "number:" + number
}

// publish queues a finished call; it returns once the event is durably stored.
func (ev *events) publish(ctx context.Context, o routing.CallOutcome) error {
	payload, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return ev.queue.Publish(ctx, queue.Event{ID: o.ID, Kind: kindCallOutcome, Payload: payload})
}

// handle is the queue's handler: one event, all its CRM writes, or an error to retry.
func (ev *events) handle(recordingURL string) queue.Handler {
	return func(ctx context.Context, e queue.Event) error {
		switch e.Kind {
		case kindCallOutcome:
		case chatbridge.QueueKindChat, chatbridge.QueueKindCRM:
			if ev.chat == nil {
				return queue.Permanent(fmt.Errorf("%s event %s: no chat platform is configured (chat.platforms)", e.Kind, e.ID))
			}
			return ev.chat(ctx, e)
		default:
			return queue.Permanent(fmt.Errorf("unknown event kind %q", e.Kind))
		}
		var o routing.CallOutcome
		if err := json.Unmarshal(e.Payload, &o); err != nil {
			return queue.Permanent(fmt.Errorf("call outcome %s: %w", e.ID, err))
		}
		if recordingURL != "" && o.RecordingURL == "" {
			o.RecordingURL = strings.ReplaceAll(recordingURL, "{linkedid}", o.ID)
		}
		_, err := ev.engine.Load().HandleCall(amocrm.WithPriority(ctx, amocrm.PriorityBackground), o)
		if errors.Is(err, rules.ErrPermanent) {
			return queue.Permanent(err)
		}
		var verr *amocrm.ValidationError
		if errors.As(err, &verr) {
			// amoCRM refused the data itself: retrying sends the same data again.
			return queue.Permanent(err)
		}
		return err
	}
}

func (ev *events) close() error {
	qerr := ev.queue.Close()
	return errors.Join(qerr, ev.closer())
}
