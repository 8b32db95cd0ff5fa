package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmlink/crmlink/internal/replicated"
)

// Redis defaults.
const (
	DefaultStream       = "crmlink:events"
	DefaultGroup        = "crmlink"
	DefaultMaxLen       = 1_000_000
	DefaultClaimMinIdle = 30 * time.Second
	DefaultPublishedFor = 24 * time.Hour
)

const (
	redisBatch       = 100       // entries per claim, move or heartbeat call
	staleConsumer    = time.Hour // idle consumers without pending entries are removed from the group
	redisErrorPause  = time.Second
	redisErrorLogGap = 30 * time.Second
)

// RedisOptions configure the Redis Streams queue.
type RedisOptions struct {
	Options
	// Stream is the stream key; default "crmlink:events". The retry schedule, dead letters
	// and counters live in keys derived from it in the same Cluster hash slot
	// ("{crmlink:events}:retry", ":dead", ":dead:order", ":stats").
	Stream string
	// Group is the consumer group shared by all crmlink instances; default "crmlink".
	Group string
	// Consumer names this instance in the group; default "<hostname>-<pid>". A stable name
	// lets a restarted instance resume its own pending entries at once instead of waiting
	// for ClaimMinIdle.
	Consumer string
	// MaxLen caps the stream (XADD MAXLEN ~). Acknowledged entries are deleted, so the
	// stream holds only unsettled events and the cap is a safety net against an unbounded
	// backlog: past it Redis drops the oldest events. Default 1,000,000.
	MaxLen int64
	// ClaimMinIdle is how long an entry delivered to a consumer may go without news before
	// another consumer claims it; live consumers refresh their entries every third of it,
	// so only a dead consumer's entries are claimed. It is also the time of an event's
	// lease: a consumer that could not refresh it for three quarters of that stops the
	// event's handler, so a live consumer taken for dead (cut off from Redis) never runs
	// an event alongside the one that claimed it. Every instance sharing the group must
	// use the same value. Default 30 s.
	ClaimMinIdle time.Duration
	// WaitReplicas, when above 0, makes Publish return only once that many replicas of the
	// Redis master hold the event (WAIT): a failover to one of them (Redis Sentinel) then
	// loses no event whose sender was answered. Event leases wait for them too. A replica that does not confirm within
	// WaitTimeout fails the Publish, so the sender (a webhook, answered 5xx) sends again;
	// the event's ID keeps a second copy from being processed twice.
	WaitReplicas int
	// WaitTimeout bounds the wait for WaitReplicas; default 1 s.
	WaitTimeout time.Duration
	// PublishedFor is how long an event's ID is remembered once published: a Publish of
	// the same ID meanwhile stores nothing. Producers on several instances (each crmlink's
	// call observer sees every call on the Asterisk) thus queue one event per ID, and the
	// handler runs once. Default 24 h.
	PublishedFor time.Duration

	// readBlock is how long one XREADGROUP waits; it bounds how long Run takes to stop.
	readBlock time.Duration
}

func (o RedisOptions) withDefaults() (RedisOptions, error) {
	var err error
	if o.Options, err = o.Options.withDefaults(); err != nil {
		return o, err
	}
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if o.Consumer == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "crmlink"
		}
		o.Consumer = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if o.MaxLen == 0 {
		o.MaxLen = DefaultMaxLen
	}
	if o.ClaimMinIdle == 0 {
		o.ClaimMinIdle = DefaultClaimMinIdle
	}
	if o.WaitTimeout == 0 {
		o.WaitTimeout = time.Second
	}
	if o.PublishedFor == 0 {
		o.PublishedFor = DefaultPublishedFor
	}
	if o.readBlock == 0 {
		o.readBlock = time.Second
	}
	if strings.ContainsAny(o.Stream, "{}") && keysFor(o.Stream).retry == "{"+o.Stream+"}:retry" {
		return o, fmt.Errorf("queue: Stream %q has braces but no Redis Cluster hash tag; use a name without braces or with a tag like \"{crmlink}:events\"", o.Stream)
	}
	switch {
	case o.MaxLen < 1000:
		return o, fmt.Errorf("queue: MaxLen %d would drop events under an ordinary backlog; use at least 1000, or 0 for %d", o.MaxLen, DefaultMaxLen)
	case o.ClaimMinIdle < 10*time.Millisecond:
		return o, fmt.Errorf("queue: ClaimMinIdle %s is too short to tell a slow consumer from a dead one; use at least 10ms, or 0 for %s", o.ClaimMinIdle, DefaultClaimMinIdle)
	}
	return o, nil
}

type redisKeys struct {
	stream, retry, dead, deadOrder, stats, published, lease, seq string
	// keyLease, keyQueue and keyAt are prefixes of an order key's lease, queue and places.
	keyLease, keyQueue, keyAt string
}

// keysFor derives the auxiliary keys so that they hash to the stream's Cluster slot: a key
// without braces hashes as a whole, so "{stream}:x" shares its slot.
func keysFor(stream string) redisKeys {
	prefix := "{" + stream + "}"
	if i := strings.IndexByte(stream, '{'); i >= 0 {
		if j := strings.IndexByte(stream[i+1:], '}'); j > 0 {
			prefix = stream // already carries a hash tag
		}
	}
	return redisKeys{
		stream:    stream,
		retry:     prefix + ":retry",
		dead:      prefix + ":dead",
		deadOrder: prefix + ":dead:order",
		published: prefix + ":published:",
		lease:     prefix + ":lease:",
		seq:       prefix + ":seq",
		keyLease:  prefix + ":keylease:",
		keyQueue:  prefix + ":keyq:",
		keyAt:     prefix + ":keyat:",
		stats:     prefix + ":stats",
	}
}

// Redis is the Queue on Redis Streams with a consumer group; instances sharing the stream
// share the work. Events are stream entries ({"event": JSON}); an entry is deleted when it
// is settled, so the stream holds only events not yet handled. Events of one order key run
// one at a time and in publish order across the instances too: each runs under its key's
// lease, which an instance takes only for the head of the key's queue, the earliest of the
// key's events not yet acknowledged or dead (heldEntry, takeKeyLease, redis_scripts.go).
type Redis struct {
	rdb  redis.UniversalClient
	opts RedisOptions
	keys redisKeys

	closed atomic.Bool
	runMu  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}

	// held are the entries this consumer has in memory, by entry ID; the heartbeat keeps
	// them from being claimed by another consumer while they wait or run, and refreshes the
	// leases of those running.
	heldMu sync.Mutex
	held   map[string]*heldEntry

	errMu   sync.Mutex
	lastErr time.Time
}

var _ Queue = (*Redis)(nil)

// NewRedis returns the Redis queue and creates its consumer group if it does not exist.
// The group starts at the beginning of the stream, so events published before any
// consumer ran are delivered. A Redis that does not answer or refuses writes (down, failing
// over, short of replicas for min-replicas-to-write) does not stop crmlink from starting
// and routing: the group is created by Run once Redis takes it, and Publish fails until then.
func NewRedis(rdb redis.UniversalClient, opts RedisOptions) (*Redis, error) {
	if rdb == nil {
		return nil, errors.New("queue: NewRedis needs a Redis client")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	opts.Logger = opts.Logger.With().Str("component", "queue").Str("store", "redis").Logger()
	q := &Redis{rdb: rdb, opts: opts, keys: keysFor(opts.Stream), held: map[string]*heldEntry{}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := q.ensureGroup(ctx); err != nil {
		opts.Logger.Warn().Err(err).Msg("event queue: Redis does not take the consumer group yet; events are refused until it does, calls are routed meanwhile")
	}
	return q, nil
}

func (q *Redis) ensureGroup(ctx context.Context) error {
	err := q.rdb.XGroupCreateMkStream(ctx, q.keys.stream, q.opts.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("queue: create consumer group %q on %q: %w", q.opts.Group, q.keys.stream, err)
	}
	return nil
}

// Publish implements Queue: XADD, durable as far as the Redis server's persistence
// (appendonly, appendfsync) and replication are.
func (q *Redis) Publish(ctx context.Context, e Event) error {
	if q.closed.Load() {
		return ErrClosed
	}
	_, b, err := prepare(e, time.Now())
	if err != nil {
		return err
	}
	key := q.opts.storedKey(e)
	keys := []string{q.keys.stream, q.keys.published + e.ID, q.keys.seq, q.keys.keyQueue + key, q.keys.keyAt + key}
	args := []any{q.opts.MaxLen, b, q.opts.PublishedFor.Milliseconds(), key, e.ID}
	if q.opts.WaitReplicas <= 0 {
		err = publishOnce.Run(ctx, q.rdb, keys, args...).Err()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("queue: publish %q: %w", e.ID, err)
		}
		return nil
	}
	err = replicated.Write(ctx, q.rdb, q.opts.WaitReplicas, q.opts.WaitTimeout, func(p redis.Pipeliner) {
		publishOnce.Eval(ctx, p, keys, args...)
	})
	if err != nil {
		return fmt.Errorf("queue: publish %q: %w", e.ID, err)
	}
	return nil
}

// publishOnce adds the event to the stream unless its ID was published within the TTL,
// and an event with an order key to the end of its key's queue (see redis_scripts.go):
// KEYS stream, the ID's marker, the publish sequence, the key's queue and places; ARGV max
// length, event, marker TTL in ms, order key ("": none), event ID. One script, so a marker
// never exists without its event, nor a keyed event outside its key's queue.
var publishOnce = redis.NewScript(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[3]) then return false end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', ARGV[2])
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[4], 'NX', redis.call('INCR', KEYS[3]), ARGV[5])
  redis.call('HSET', KEYS[5], ARGV[5], id)
end
return id
`)

// Run implements Queue.
func (q *Redis) Run(ctx context.Context, h Handler) error {
	if q.closed.Load() {
		return ErrClosed
	}
	q.runMu.Lock()
	if q.cancel != nil {
		q.runMu.Unlock()
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	q.cancel, q.done = cancel, done
	q.runMu.Unlock()
	defer func() {
		cancel()
		q.runMu.Lock()
		q.cancel, q.done = nil, nil
		q.runMu.Unlock()
		close(done)
	}()
	return run(ctx, q, h, q.opts.Options)
}

// Close implements Queue; the Redis client stays open, it belongs to the caller.
func (q *Redis) Close() error {
	q.closed.Store(true)
	q.runMu.Lock()
	cancel, done := q.cancel, q.done
	q.runMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// Dead implements Queue.
func (q *Redis) Dead(ctx context.Context, limit int) ([]Event, error) {
	stop := int64(limit - 1)
	if limit <= 0 {
		stop = -1
	}
	ids, err := q.rdb.ZRange(ctx, q.keys.deadOrder, 0, stop).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: list dead events: %w", err)
	}
	out := []Event{}
	if len(ids) == 0 {
		return out, nil
	}
	vals, err := q.rdb.HMGet(ctx, q.keys.dead, ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: list dead events: %w", err)
	}
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // replayed between the two reads
		}
		var e Event
		if err := json.Unmarshal([]byte(s), &e); err != nil {
			return nil, fmt.Errorf("queue: dead event is not readable: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Replay implements Queue.
func (q *Redis) Replay(ctx context.Context, id string) error {
	for range 5 {
		old, err := q.rdb.HGet(ctx, q.keys.dead, id).Result()
		if errors.Is(err, redis.Nil) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("queue: replay %q: %w", id, err)
		}
		var e Event
		if err := json.Unmarshal([]byte(old), &e); err != nil {
			return fmt.Errorf("queue: replay %q: dead event is not readable: %w", id, err)
		}
		e.Attempts = 0
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("queue: replay %q: %w", id, err)
		}
		key := q.opts.storedKey(e)
		res, err := replayScript.Run(ctx, q.rdb, []string{q.keys.dead, q.keys.deadOrder, q.keys.stream,
			q.keys.seq, q.keys.keyQueue + key, q.keys.keyAt + key},
			id, old, b, q.opts.MaxLen, key).Int()
		if err != nil {
			return fmt.Errorf("queue: replay %q: %w", id, err)
		}
		switch res {
		case 1:
			return nil
		case -1:
			return ErrNotFound
		}
		// The dead entry changed between the read and the script (it died again): reread.
	}
	return fmt.Errorf("queue: replay %q: the dead event keeps changing; try again", id)
}

// Stats implements Queue.
func (q *Redis) Stats(ctx context.Context) (Stats, error) {
	var (
		xlen    *redis.IntCmd
		pending *redis.XPendingCmd
		retry   *redis.IntCmd
		dead    *redis.IntCmd
		counts  *redis.SliceCmd
		first   *redis.XMessageSliceCmd
	)
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		xlen = p.XLen(ctx, q.keys.stream)
		pending = p.XPending(ctx, q.keys.stream, q.opts.Group)
		retry = p.ZCard(ctx, q.keys.retry)
		dead = p.HLen(ctx, q.keys.dead)
		counts = p.HMGet(ctx, q.keys.stats, "processed", "failures")
		first = p.XRangeN(ctx, q.keys.stream, "-", "+", 1)
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	s := Stats{InFlight: pending.Val().Count, Retrying: retry.Val(), Dead: dead.Val()}
	// Settled entries are deleted, so the stream is the pending entries plus those not yet
	// delivered.
	s.Pending = max(xlen.Val()-s.InFlight, 0)
	v := counts.Val()
	s.Processed, s.Failures = atoi(v[0]), atoi(v[1])
	// A stream entry's id starts with the milliseconds Redis stored it at.
	if msgs := first.Val(); len(msgs) > 0 {
		ms, _, _ := strings.Cut(msgs[0].ID, "-")
		if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
			s.OldestAt = time.UnixMilli(n)
		}
	}
	return s, nil
}

func atoi(v any) int64 {
	s, _ := v.(string)
	var n int64
	_, _ = fmt.Sscan(s, &n)
	return n
}

// feed runs the consumer: its own pending entries first (a restart under a stable name),
// then new entries, entries claimed from dead consumers, due retries, and the heartbeat.
func (q *Redis) feed(ctx context.Context, eng *engine) error {
	q.pruneConsumers(ctx)
	q.readOwn(ctx, eng)
	var wg sync.WaitGroup
	wg.Go(func() { q.readNew(ctx, eng) })
	wg.Go(func() { q.claimLoop(ctx, eng) })
	wg.Go(func() { q.moveLoop(ctx) })
	wg.Go(func() { q.heartbeatLoop(ctx) })
	wg.Go(func() { q.leaseWatch(ctx) })
	wg.Wait()
	return nil
}

func (q *Redis) readOwn(ctx context.Context, eng *engine) {
	start := "0"
	for {
		n := eng.acquire(ctx, redisBatch)
		if n == 0 {
			return
		}
		res, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: q.opts.Group, Consumer: q.opts.Consumer,
			Streams: []string{q.keys.stream, start}, Count: int64(n),
		}).Result()
		if err != nil || len(res) == 0 || len(res[0].Messages) == 0 {
			eng.give(n)
			if err != nil && !errors.Is(err, redis.Nil) && ctx.Err() == nil {
				q.logRedisError(err, "read own pending entries")
			}
			return
		}
		msgs := res[0].Messages
		start = msgs[len(msgs)-1].ID
		eng.give(n - q.deliverAll(ctx, eng, msgs))
	}
}

func (q *Redis) readNew(ctx context.Context, eng *engine) {
	for {
		n := eng.acquire(ctx, q.opts.Concurrency)
		if n == 0 {
			return
		}
		res, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: q.opts.Group, Consumer: q.opts.Consumer,
			Streams: []string{q.keys.stream, ">"}, Count: int64(n), Block: q.opts.readBlock,
		}).Result()
		if err != nil {
			eng.give(n)
			if errors.Is(err, redis.Nil) || ctx.Err() != nil {
				continue
			}
			q.pauseOnError(ctx, err, "read new entries")
			continue
		}
		used := 0
		for _, s := range res {
			used += q.deliverAll(ctx, eng, s.Messages)
		}
		eng.give(n - used)
	}
}

// claimLoop takes over entries that another consumer (or this one, after giving an entry
// back) left idle for ClaimMinIdle.
func (q *Redis) claimLoop(ctx context.Context, eng *engine) {
	t := time.NewTicker(max(q.opts.ClaimMinIdle/2, 10*time.Millisecond))
	defer t.Stop()
	start := "0-0"
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := eng.tryAcquire(redisBatch)
		if n == 0 {
			continue
		}
		msgs, next, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: q.keys.stream, Group: q.opts.Group, Consumer: q.opts.Consumer,
			MinIdle: q.opts.ClaimMinIdle, Start: start, Count: int64(n),
		}).Result()
		if err != nil {
			eng.give(n)
			if ctx.Err() == nil {
				q.pauseOnError(ctx, err, "claim idle entries")
			}
			continue
		}
		start = next
		if len(msgs) > 0 {
			q.opts.Logger.Info().Int("entries", len(msgs)).Msg("claimed idle event entries from another consumer")
		}
		eng.give(n - q.deliverAll(ctx, eng, msgs))
	}
}

// moveLoop puts due retries back on the stream; any instance may do it, the script moves
// each retry once.
func (q *Redis) moveLoop(ctx context.Context) {
	t := time.NewTicker(min(max(q.opts.BackoffBase/2, 10*time.Millisecond), time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for {
			n, err := moveDueScript.Run(ctx, q.rdb, []string{q.keys.retry, q.keys.stream},
				time.Now().UnixMilli(), redisBatch, q.opts.MaxLen, q.keys.keyAt).Int()
			if err != nil {
				if ctx.Err() == nil {
					q.logRedisError(err, "move due retries")
				}
				break
			}
			if n < redisBatch {
				break
			}
		}
	}
}

// heartbeatLoop resets the idle time of every entry this consumer holds, so that a slow
// handler or a queue behind an ordering key is not mistaken for a dead consumer, and
// refreshes the leases of the events running. One round is one pipeline, bounded by a third
// of ClaimMinIdle, so a Redis that does not answer (a failover) does not hold up the next.
func (q *Redis) heartbeatLoop(ctx context.Context) {
	every := max(q.opts.ClaimMinIdle/3, 5*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, every)
		err := q.heartbeat(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			q.logRedisError(err, "refresh held entries")
		}
	}
}

func (q *Redis) heartbeat(ctx context.Context) error {
	type leased struct{ entry, key, value string }
	q.heldMu.Lock()
	ids := make([]string, 0, len(q.held))
	var leases []leased
	for id, h := range q.held {
		if h.lost {
			continue // another consumer may run it now: leave the entry to that one
		}
		ids = append(ids, id)
		if h.lease != "" && !h.settling {
			leases = append(leases, leased{id, h.lease, h.value})
		}
	}
	q.heldMu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	sent := time.Now()
	var renewals []*redis.Cmd
	// The leases count once the replicas hold them (a failover must not hand them back).
	replicas := q.opts.WaitReplicas
	if len(leases) == 0 {
		replicas = 0
	}
	err := replicated.Write(ctx, q.rdb, replicas, q.opts.WaitTimeout, func(p redis.Pipeliner) {
		// Leases first: each then runs out just before its entry becomes claimable.
		for rest := leases; len(rest) > 0; {
			chunk := rest[:min(len(rest), redisBatch)]
			rest = rest[len(chunk):]
			keys := make([]string, len(chunk))
			args := []any{q.opts.ClaimMinIdle.Milliseconds()}
			for i, l := range chunk {
				keys[i] = l.key
				args = append(args, l.value)
			}
			renewals = append(renewals, renewLeases.Eval(ctx, p, keys, args...))
		}
		for rest := ids; len(rest) > 0; {
			chunk := rest[:min(len(rest), redisBatch)]
			rest = rest[len(chunk):]
			p.XClaimJustID(ctx, &redis.XClaimArgs{
				Stream: q.keys.stream, Group: q.opts.Group, Consumer: q.opts.Consumer, Messages: chunk,
			})
		}
	})
	if err != nil {
		return fmt.Errorf("refresh the leases and entries: %w", err)
	}
	until := sent.Add(q.leaseSure())
	q.heldMu.Lock()
	defer q.heldMu.Unlock()
	i := 0
	for _, r := range renewals {
		res, _ := r.Int64Slice()
		for _, ok := range res {
			l := leases[i]
			i++
			h := q.held[l.entry]
			if h == nil || h.value != l.value || h.settling {
				continue // settled meanwhile: its lease is dropped, maybe taken by the next event of its key
			}
			if ok == 1 {
				h.until = until
			} else {
				q.loseLease(l.entry, h, "another consumer holds it now")
			}
		}
	}
	return nil
}

// renewLeases extends each lease (KEYS) still held by its value (ARGV[i+1]) by ARGV[1] ms;
// 1 for each renewed, 0 for each lost.
var renewLeases = redis.NewScript(`
local out = {}
for i, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[i + 1] then
    redis.call('PEXPIRE', k, ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`)

// takeLease sets the event's lease (KEYS[1]) to ARGV[1] for ARGV[2] ms unless another
// value holds it; 1 taken, 0 held by another.
var takeLease = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// takeKeyLease sets the lease of an order key (KEYS[1]) to ARGV[1] for ARGV[2] ms for the
// entry ARGV[3] (event ARGV[4]) of the stream KEYS[2], if no other entry holds it and the
// event heads its key's queue (KEYS[3], places KEYS[4]): no event of the client published
// before it is unsettled. A head that is nowhere any more (its entry trimmed by MaxLen or
// deleted by hand, its retry gone from KEYS[5]) leaves the queue; an event outside it
// (published by an older crmlink) takes only the lease. Answers {1} taken; {0} held for
// this very event by another consumer; {2, head} not its turn (another event of the key
// runs, or the head is in the stream); {3} the entry is gone (settled meanwhile); {4, head,
// due ms} the head waits for its retry, due then.
var takeKeyLease = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then
  local mark = ' ' .. ARGV[4]
  if string.sub(v, -#mark) == mark then return {0} end
  return {2, ''}
end
if #redis.call('XRANGE', KEYS[2], ARGV[3], ARGV[3]) == 0 then return {3} end
if redis.call('ZSCORE', KEYS[3], ARGV[4]) then
  local head
  for _ = 1, 100 do
    head = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
    if head == ARGV[4] then break end
    local at = redis.call('HGET', KEYS[4], head)
    if at and string.sub(at, 1, 1) == 'r' then
      local due = string.sub(at, 2)
      for _, e in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], due, due)) do
        local ok, ev = pcall(cjson.decode, e)
        if ok and type(ev) == 'table' and ev.id == head then return {4, head, tonumber(due)} end
      end
    elseif at and #redis.call('XRANGE', KEYS[2], at, at) > 0 then
      return {2, head}
    end
    redis.call('ZREM', KEYS[3], head)
    redis.call('HDEL', KEYS[4], head)
  end
  if head ~= ARGV[4] then return {2, ''} end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1}
`)

// heldEntry is an entry this consumer has in memory. A running one has a lease for
// ClaimMinIdle, refreshed with the heartbeat and deleted when the entry is settled: for an
// event with an order key the key's, <stream>:keylease:<order key> holding "<consumer>
// <entry ID> <event ID>", so no two events of one client run at once on two instances;
// for one without, the event's, <stream>:lease:<event ID> holding "<consumer> <entry ID>".
// A consumer that finds another's lease on an event leaves the event alone, and one that
// finds its key leased for another event, or an earlier event of the key unsettled, waits
// for its turn (parks the event when that one waits for its retry); one that cannot refresh
// its lease stops the handler before the lease can have run out in Redis.
type heldEntry struct {
	lease, value string
	stop         context.CancelCauseFunc
	until        time.Time // the lease is surely still this consumer's until then
	lost         bool
	// settling: the handler has returned and the outcome is being stored, which drops the
	// lease; it is neither renewed nor watched any more.
	settling bool
}

// leaseValue is what this consumer's lease on the entry holds.
func (q *Redis) leaseValue(entry string) string { return q.opts.Consumer + " " + entry }

// leaseSure is how long after a lease is set (measured from before the request) it is
// surely still held in Redis: three quarters of its time, leaving room for the handler's
// request in flight when it is stopped.
func (q *Redis) leaseSure() time.Duration { return q.opts.ClaimMinIdle * 3 / 4 }

// lease is the lease d runs under, and the value this consumer's entry writes in it: its
// order key's when it has one, otherwise its event's.
func (q *Redis) lease(d *delivery) (key, value string) {
	entry := d.ref.(string)
	if d.key == "" {
		return q.keys.lease + d.event.ID, q.leaseValue(entry)
	}
	return q.keys.keyLease + d.key, q.leaseValue(entry) + " " + d.event.ID
}

// begin implements exclusive: it takes the event's lease, unless another consumer (or
// another entry of the same event) holds it; for an event with an order key, the key's
// lease, unless another event of the key holds it or an earlier one is still unsettled.
// One request either way, as before the key's lease.
func (q *Redis) begin(ctx context.Context, d *delivery, stop context.CancelCauseFunc) (turn, error) {
	entry := d.ref.(string)
	key, value := q.lease(d)
	script, keys, args := takeLease, []string{key}, []any{value, q.opts.ClaimMinIdle.Milliseconds()}
	if d.key != "" {
		script, keys = takeKeyLease, []string{key, q.keys.stream, q.keys.keyQueue + d.key, q.keys.keyAt + d.key, q.keys.retry}
		args = append(args, entry, d.event.ID)
	}
	sent := time.Now()
	var (
		ans leaseAnswer
		err error
	)
	if q.opts.WaitReplicas <= 0 {
		ans, err = leaseAnswerOf(script.Run(ctx, q.rdb, keys, args...))
	} else {
		var c *redis.Cmd
		werr := replicated.Write(ctx, q.rdb, q.opts.WaitReplicas, q.opts.WaitTimeout, func(p redis.Pipeliner) {
			c = script.Eval(ctx, p, keys, args...)
		})
		switch {
		case werr != nil && !errors.Is(werr, replicated.ErrUnconfirmed):
			err = werr
		default:
			// Unconfirmed matters only for a lease taken now (code 1); an answer that
			// took nothing wrote nothing to lose.
			if ans, err = leaseAnswerOf(c); err == nil && ans.code == 1 && werr != nil {
				err = werr
			}
		}
	}
	if err != nil {
		return turnMine, fmt.Errorf("queue: take the lease of event %q: %w", d.event.ID, err)
	}
	switch ans.code {
	case 0:
		return turnElsewhere, nil
	case 2:
		d.waitFor = ans.head
		return turnWait, nil
	case 3:
		return turnGone, nil
	case 4:
		d.blockedBy, d.blockedUntil = ans.head, time.UnixMilli(ans.due)
		return turnBlocked, nil
	}
	q.heldMu.Lock()
	defer q.heldMu.Unlock()
	h := q.held[entry]
	if h == nil {
		h = &heldEntry{}
		q.held[entry] = h
	}
	h.lease, h.value, h.stop, h.until, h.lost, h.settling = key, value, stop, sent.Add(q.leaseSure()), false, false
	return turnMine, nil
}

// leaseAnswer is takeLease's (a number) or takeKeyLease's ({code, head, due}) answer.
type leaseAnswer struct {
	code int64
	head string
	due  int64
}

func leaseAnswerOf(c *redis.Cmd) (leaseAnswer, error) {
	v, err := c.Result()
	if err != nil {
		return leaseAnswer{}, err
	}
	switch v := v.(type) {
	case int64:
		return leaseAnswer{code: v}, nil
	case []any:
		var a leaseAnswer
		if len(v) > 0 {
			a.code, _ = v[0].(int64)
		}
		if len(v) > 1 {
			a.head, _ = v[1].(string)
		}
		if len(v) > 2 {
			a.due, _ = v[2].(int64)
		}
		return a, nil
	}
	return leaseAnswer{}, fmt.Errorf("unexpected answer %v", v)
}

// leaseWatch stops the handlers whose leases this consumer could not refresh in time:
// past leaseSure another consumer may claim the entry once Redis answers again. It looks
// every fortieth of the lease (750 ms by default), so a handler stops at most that long
// after leaseSure, well before the lease runs out.
func (q *Redis) leaseWatch(ctx context.Context) {
	t := time.NewTicker(max(q.opts.ClaimMinIdle/40, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			q.heldMu.Lock()
			for entry, h := range q.held {
				if h.lease != "" && !h.lost && !h.settling && now.After(h.until) {
					q.loseLease(entry, h, "not refreshed in time")
				}
			}
			q.heldMu.Unlock()
		}
	}
}

// loseLease stops the handler of a held entry whose lease is no longer sure; heldMu is held.
func (q *Redis) loseLease(entry string, h *heldEntry, why string) {
	h.lost = true
	q.opts.Logger.Warn().Str("entry", entry).Str("lease", h.lease).Str("why", why).
		Msg("event lease lost; stopping its handler before its next write, the event is delivered again")
	if h.stop != nil {
		h.stop(errLeaseLost)
	}
}

// deliverAll submits msgs to the engine and returns how many slots they used.
func (q *Redis) deliverAll(ctx context.Context, eng *engine, msgs []redis.XMessage) int {
	used := 0
	for _, m := range msgs {
		if q.deliver(ctx, eng, m) {
			used++
		}
	}
	return used
}

func (q *Redis) deliver(ctx context.Context, eng *engine, m redis.XMessage) bool {
	raw, ok := m.Values["event"].(string)
	if !ok {
		// A pending entry whose data is gone (trimmed past MaxLen or deleted by hand):
		// nothing to deliver, drop it from the group's pending list.
		q.opts.Logger.Error().Str("entry", m.ID).Msg("pending event entry has no data (trimmed by MaxLen?); dropping it")
		_ = q.rdb.XAck(ctx, q.keys.stream, q.opts.Group, m.ID).Err()
		return false
	}
	var e Event
	if err := json.Unmarshal([]byte(raw), &e); err != nil || e.ID == "" {
		q.buryUnreadable(ctx, m.ID, raw, err)
		return false
	}
	q.heldMu.Lock()
	_, dup := q.held[m.ID]
	if !dup {
		q.held[m.ID] = &heldEntry{}
	}
	q.heldMu.Unlock()
	if dup {
		return false // claimed back while already held
	}
	eng.submit(&delivery{event: e, ref: m.ID})
	return true
}

// buryUnreadable keeps an entry nobody can decode in the dead-letter list, raw, for an
// operator to look at, rather than dropping it or failing on it forever.
func (q *Redis) buryUnreadable(ctx context.Context, entry, raw string, err error) {
	if err == nil {
		err = errors.New("event has no id")
	}
	payload, _ := json.Marshal(raw)
	e := Event{ID: "stream:" + entry, Kind: "unreadable", Payload: payload, FirstSeen: time.Now().UTC(),
		LastError: "stored event is not readable: " + err.Error()}
	b, _ := json.Marshal(e)
	q.opts.Logger.Error().Str("entry", entry).Err(err).Msg("stored event is not readable; moved to the dead-letter list")
	_ = buryScript.Run(ctx, q.rdb, []string{q.keys.stream, q.keys.dead, q.keys.deadOrder, q.keys.stats, q.keys.lease + e.ID,
		q.keys.keyQueue, q.keys.keyAt}, q.opts.Group, entry, e.ID, b, time.Now().UnixMilli(), q.leaseValue(entry), "").Err()
}

// settling marks d's entry as being settled (see heldEntry.settling).
func (q *Redis) settling(d *delivery) {
	q.heldMu.Lock()
	if h := q.held[d.ref.(string)]; h != nil {
		h.settling = true
	}
	q.heldMu.Unlock()
}

func (q *Redis) forget(d *delivery) {
	q.heldMu.Lock()
	delete(q.held, d.ref.(string))
	q.heldMu.Unlock()
}

func (q *Redis) ack(ctx context.Context, d *delivery) error {
	q.settling(d)
	lease, value := q.lease(d)
	err := ackScript.Run(ctx, q.rdb, []string{q.keys.stream, q.keys.stats, lease, q.keys.keyQueue + d.key, q.keys.keyAt + d.key},
		q.opts.Group, d.ref.(string), value, d.event.ID, d.key).Err()
	if err == nil {
		q.forget(d)
	}
	return err
}

func (q *Redis) retry(ctx context.Context, d *delivery, next Event, at time.Time, failed bool) error {
	if next.Key == "" {
		next.Key = d.key // moveDueScript finds the key's places by it
	}
	q.settling(d)
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	f := "0"
	if failed {
		f = "1"
	}
	lease, value := q.lease(d)
	err = retryScript.Run(ctx, q.rdb, []string{q.keys.stream, q.keys.retry, q.keys.stats, lease, q.keys.keyAt + d.key},
		q.opts.Group, d.ref.(string), at.UnixMilli(), b, f, value, d.event.ID, d.key).Err()
	if err == nil {
		q.forget(d)
	}
	return err
}

func (q *Redis) bury(ctx context.Context, d *delivery, dead Event) error {
	q.settling(d)
	b, err := json.Marshal(dead)
	if err != nil {
		return err
	}
	lease, value := q.lease(d)
	err = buryScript.Run(ctx, q.rdb, []string{q.keys.stream, q.keys.dead, q.keys.deadOrder, q.keys.stats, lease,
		q.keys.keyQueue + d.key, q.keys.keyAt + d.key}, q.opts.Group, d.ref.(string), dead.ID, b, time.Now().UnixMilli(), value, d.key).Err()
	if err == nil {
		q.forget(d)
	}
	return err
}

// release leaves the entry pending under this consumer's name without a heartbeat: after
// ClaimMinIdle a consumer (this one included) claims and delivers it again.
func (q *Redis) release(d *delivery) { q.forget(d) }

// pruneConsumers removes long-idle consumers without pending entries, left behind by
// restarts under the default hostname-pid names.
func (q *Redis) pruneConsumers(ctx context.Context) {
	cs, err := q.rdb.XInfoConsumers(ctx, q.keys.stream, q.opts.Group).Result()
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.Pending == 0 && c.Idle > staleConsumer && c.Name != q.opts.Consumer {
			_ = q.rdb.XGroupDelConsumer(ctx, q.keys.stream, q.opts.Group, c.Name).Err()
		}
	}
}

// pauseOnError logs err (recreating the group if it vanished) and waits before the caller
// tries Redis again.
func (q *Redis) pauseOnError(ctx context.Context, err error, what string) {
	if strings.HasPrefix(err.Error(), "NOGROUP") {
		q.opts.Logger.Warn().Msg("consumer group is gone (stream deleted?); recreating it")
		if gerr := q.ensureGroup(ctx); gerr == nil {
			return
		}
	}
	q.logRedisError(err, what)
	t := time.NewTimer(redisErrorPause)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// logRedisError logs at most one Redis error per redisErrorLogGap, so an outage does not
// flood the log.
func (q *Redis) logRedisError(err error, what string) {
	q.errMu.Lock()
	now := time.Now()
	quiet := now.Sub(q.lastErr) < redisErrorLogGap
	if !quiet {
		q.lastErr = now
	}
	q.errMu.Unlock()
	if !quiet {
		q.opts.Logger.Error().Err(err).Msg("event queue: Redis: " + what)
	}
}
