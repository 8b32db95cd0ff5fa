package amocrm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// DefaultSharedBudgetKey is the Redis key of the account budget several crmlink instances
// share (a sorted set of the slots handed out, one hash slot on Redis Cluster). The
// instances' heartbeats live beside it (seenKeyOf).
const DefaultSharedBudgetKey = "{crmlink:amocrm}:budget"

const (
	// sharedBudgetTimeout bounds one look at the shared budget and one heartbeat.
	sharedBudgetTimeout = 150 * time.Millisecond
	// sharedBudgetCallTimeout is that bound for a call-path request of an instance alone:
	// the caller is waiting for the routing answer, and a Redis slower than this (a LAN
	// round trip is well under a millisecond) costs the call less than the lookup itself,
	// since the instance's own limiter serves at once. With peers a call waits longer
	// (sharedBudgetTimeout, then the gate or Redis coming back, within its deadline).
	sharedBudgetCallTimeout = 25 * time.Millisecond
	// heartbeatEvery is how often an instance tells Redis it spends the budget there, and,
	// while Redis does not answer, how often it looks whether it answers again.
	heartbeatEvery = 200 * time.Millisecond
	// aliveFor: an instance whose last heartbeat Redis stamped longer ago than this counts
	// as cut off, spending its own share, and the others leave that share free.
	aliveFor = 3 * heartbeatEvery
	// heartbeatValid: a heartbeat that reaches Redis later than this after it was sent
	// (queued behind a stalled master, a TCP segment retransmitted after a partition
	// heals) is refused, so an instance always knows the latest moment Redis can have
	// seen it.
	heartbeatValid = 100 * time.Millisecond
	// clockSlack covers the error of the Redis clock's offset, measured over one round trip.
	clockSlack = 20 * time.Millisecond
	// ownFor is how long an instance cut off from Redis spends its own share while a peer
	// may be on Redis: enough for the calls it is routing until the load balancer moves
	// them (it steps aside), and bounded so that a peer that stays silent longer than
	// reclaimAfter can be counted as dead. Past it the instance spends only while every
	// peer says it is cut off too (PeersCutOff).
	ownFor = 10 * time.Second
	// reclaimAfter: a peer silent for this long, while this instance has been on Redis as
	// long, is dead or has stopped spending: its share is the others' again.
	reclaimAfter = 15 * time.Second
	// peersCutOffEvery is how often a cut-off instance past ownFor asks whether its peers
	// are cut off too.
	peersCutOffEvery = 250 * time.Millisecond
	// reserveAhead is how far ahead a call may reserve a slot; one further off looks again
	// later. It bounds how long the slots taken while an instance counted stay in the
	// future, and so the gate before its own share.
	reserveAhead = 250 * time.Millisecond
)

// sharedBudget is the limiter's algorithm run inside Redis, so that every crmlink instance
// of one amoCRM account spends one budget: at most n requests in any window, call-path
// requests reserving the next free slot (even a future one), background requests taking
// only a slot free now and at most n-reserve of any window. Redis's own clock (TIME) times
// the slots, so the instances' clocks need not agree; each instance waits the returned
// delay on its own clock.
//
// Instances cut off from Redis keep the account within its budget. Each of the k instances (Options.Instances) owns a share, n/k, that it may
// spend on its own while Redis does not answer. Every instance writes a heartbeat to Redis
// every heartbeatEvery; a heartbeat that arrives late is refused by the script, so an
// instance knows the latest moment Redis can have seen it (seenUntil). The shared budget
// hands out n minus the share of every instance not seen for aliveFor. A cut-off instance
// starts spending its share only at seenUntil + aliveFor + reserveAhead + window: by then
// the others count it as cut off, and the slots they took while it still counted (none
// further ahead than reserveAhead) have left every window. While cut off it writes to
// Redis only to see whether Redis takes writes again (probeWrite), so its gate stays put. So the account sees at most n in any window in every split: all on Redis
// (n through Redis), some cut off (n - their shares through Redis, a share each on their
// own), all cut off (a share each). Back on Redis, an instance first writes the slots it
// spent on its own into the shared budget with its heartbeat. A cut-off instance spends
// its share for ownFor, and past it only while every peer says it is cut off too
// (PeersCutOff: Redis down for all), so a peer silent for reclaimAfter, while this instance
// has been on Redis as long, is dead or spends nothing, and its share is the others' again.
// The price: a cut-off instance has no amoCRM request for about 2 s after its last
// heartbeat, and while a peer is dead the others share n minus its share for reclaimAfter.
//
// An instance alone (Instances 1) has nobody to wait for: it falls back at once to its own
// limiter with the whole budget, which has also counted the slots it took through Redis.
// Requests are assumed to reach amoCRM within the limiter's margin of their slot.
type sharedBudget struct {
	rdb       redis.UniversalClient
	key       string
	seenKey   string
	n         int
	window    time.Duration
	reserve   int
	instances int
	// local counts the instance's own requests for the waiting hook; fallback serves while
	// Redis does not answer (local itself when the instance is alone).
	local    *limiter
	fallback *limiter
	log      zerolog.Logger
	// peersCutOff says whether every peer reported, moments ago, that it cannot reach Redis
	// either; nil: never.
	peersCutOff func() bool
	// ownFor and reclaimAfter are the constants of those names (shorter in tests).
	ownFor, reclaimAfter time.Duration

	id   string
	seq  atomic.Uint64
	down atomic.Bool
	upMu sync.Mutex
	up   chan struct{} // closed when Redis answers again (upSignal)
	stop context.CancelFunc
	done chan struct{}

	// seenUntil is the latest local time (unix ns) at which Redis can have stamped a
	// heartbeat of this instance.
	seenUntil atomic.Int64
	// downSince and upSince (unix ns) are when Redis last stopped answering and when this
	// instance last came back to it (or started).
	downSince, upSince atomic.Int64
	// offset is Redis's clock minus ours (ns), measured with TIME and each heartbeat.
	offset      atomic.Int64
	offsetKnown atomic.Bool
	crowded     atomic.Bool // logged that more instances spend the budget than Instances says

	// mu orders the fallback's slots with the heartbeat that writes them to Redis.
	mu sync.Mutex
	// offGrants are the slots the fallback handed out since Redis stopped answering.
	offGrants []time.Time
}

func newSharedBudget(rdb redis.UniversalClient, key string, instances int, peersCutOff func() bool, local *limiter, log zerolog.Logger) *sharedBudget {
	if key == "" {
		key = DefaultSharedBudgetKey
	}
	instances = max(instances, 1)
	fallback := local
	if instances > 1 {
		fallback = newLimiter(shareOf(local.n, instances), local.window).reserveForCalls(min(local.reserve, shareOf(local.n, instances)-1))
		fallback.onWait = local.onWait
	}
	host, _ := os.Hostname()
	ctx, stop := context.WithCancel(context.Background())
	s := &sharedBudget{rdb: rdb, key: key, seenKey: seenKeyOf(key), n: local.n, window: local.window, reserve: local.reserve,
		instances: instances, local: local, fallback: fallback, log: log, stop: stop, done: make(chan struct{}),
		peersCutOff: peersCutOff, ownFor: ownFor, reclaimAfter: reclaimAfter,
		id: fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano())}
	s.up = closedSignal
	s.upSince.Store(time.Now().UnixNano())
	go s.run(ctx)
	return s
}

// shareOf is what each of k instances may spend of n on its own.
func shareOf(n, k int) int { return max(n/max(k, 1), 1) }

// seenKeyOf names the heartbeat hash of a budget key, in the same Redis Cluster hash slot:
// a key with a hash tag keeps it, a key without one is hashed whole, as "{key}" is.
func seenKeyOf(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 && strings.IndexByte(key[i+1:], '}') > 0 {
		return key + ":seen"
	}
	return "{" + key + "}:seen"
}

// close stops the heartbeats.
func (s *sharedBudget) close() {
	s.stop()
	<-s.done
	// Stopped for good: the peers may take this instance's share back at once (a peer on
	// Redis for reclaimAfter holds the share of instances seen lately, and this one is no
	// longer among them).
	ctx, cancel := context.WithTimeout(context.Background(), sharedBudgetTimeout)
	defer cancel()
	_ = s.rdb.HDel(ctx, s.seenKey, s.id).Err()
}

// heartbeatScript tells Redis this instance spends the budget there, and writes the slots it
// spent on its own meanwhile. KEYS: the budget zset, the heartbeat hash. ARGV: the instance,
// the latest Redis time (ms) the heartbeat may arrive at, the window (ms), the member prefix
// of written slots, then each slot's age (ms before now; negative: a reserved future slot).
// Returns {1, now} or, arrived too late, {0, now} and nothing written.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > tonumber(ARGV[2]) then return {0, now} end
local win = tonumber(ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], now)
local seen = redis.call('HGETALL', KEYS[2])
for i = 1, #seen, 2 do
  if now - tonumber(seen[i + 1]) > 3600000 then redis.call('HDEL', KEYS[2], seen[i]) end
end
redis.call('PEXPIRE', KEYS[2], 3600000)
for i = 5, #ARGV do
  redis.call('ZADD', KEYS[1], now - tonumber(ARGV[i]), ARGV[4] .. '-' .. i)
end
if #ARGV >= 5 and redis.call('PTTL', KEYS[1]) < 4 * win then
  redis.call('PEXPIRE', KEYS[1], 4 * win)
end
return {1, now}
`)

// budgetScript hands out one slot. KEYS: the budget zset, the heartbeat hash. ARGV: n,
// window (ms), the calls' reserve, reserve a future slot (1 call, 0 background), the
// longest wait the caller can afford (ms; -1 none), the member naming this request, the
// instances sharing the budget, each one's share, aliveFor (ms), this instance,
// reclaimAfter (ms), how long this instance has been on Redis (ms). Instances not seen for
// aliveFor may spend their share on their own: the pool is n minus their shares, and the
// calls' reserve shrinks with it (at least one while there is one). Once this instance has
// been on Redis for reclaimAfter, only the instances seen within reclaimAfter are held so:
// the others are dead, or have stopped spending (ownFor).
// Returns {taken, wait ms, instances seen}: taken 1 with the wait before sending, or taken
// 0 with when to look again (background) or how long the call would have had to wait.
var budgetScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n, win, reserve = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local alive, recent, self = 0, 0, false
local seen = redis.call('HGETALL', KEYS[2])
for i = 1, #seen, 2 do
  local age = now - tonumber(seen[i + 1])
  if age <= tonumber(ARGV[9]) then
    alive = alive + 1
    if seen[i] == ARGV[10] then self = true end
  elseif age <= tonumber(ARGV[11]) then
    recent = recent + 1
  end
end
if not self then alive = alive + 1 end
local held = math.max(tonumber(ARGV[7]) - alive, 0)
if tonumber(ARGV[12]) > tonumber(ARGV[11]) then held = math.min(held, recent) end
local pool = math.max(n - held * tonumber(ARGV[8]), 1)
if pool < n and reserve > 0 then reserve = math.max(math.floor(reserve * pool / n), 1) end
local limit = pool
if ARGV[4] ~= '1' then limit = math.max(pool - reserve, 1) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
local slot = now
local k = redis.call('ZCARD', KEYS[1])
if k > 0 then
  local last = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
  if last > slot then slot = last end
  if k >= limit then
    local g = tonumber(redis.call('ZRANGE', KEYS[1], k - limit, k - limit, 'WITHSCORES')[2])
    if g + win > slot then slot = g + win end
  end
end
local wait = slot - now
local maxw = tonumber(ARGV[5])
if wait > 0 and (ARGV[4] ~= '1' or (maxw >= 0 and wait > maxw)) then
  return {0, wait, alive}
end
redis.call('ZADD', KEYS[1], slot, ARGV[6])
if redis.call('PTTL', KEYS[1]) < wait + 2 * win then
  redis.call('PEXPIRE', KEYS[1], wait + 2 * win)
end
return {1, wait, alive}
`)

// errBudgetUnreachable marks a failed look at the shared budget.
var errBudgetUnreachable = errors.New("shared amoCRM budget in Redis unreachable")

func (s *sharedBudget) wait(ctx context.Context, p Priority) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	announced := false
	announce := func() {
		if !announced {
			s.local.waiting(p)
			announced = true
		}
	}
	for {
		if s.down.Load() {
			return s.waitOwn(ctx, p, announce)
		}
		member := fmt.Sprintf("%s-%d", s.id, s.seq.Add(1))
		taken, wait, err := s.take(ctx, p, member)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.goDown(err)
			return s.waitOwn(ctx, p, announce)
		}
		if taken && s.fallback == s.local {
			s.local.record(time.Now().Add(wait))
		}
		if taken && wait <= 0 {
			return nil
		}
		if !taken {
			if err := fitsDeadline(ctx, wait); err != nil {
				return err
			}
			if p == PriorityCall { // reserve once the slot is within reserveAhead
				wait -= reserveAhead
			}
			wait = max(wait, time.Millisecond)
		}
		announce()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			if taken {
				return nil
			}
		case <-ctx.Done():
			t.Stop()
			if taken {
				s.release(member)
			}
			return ctx.Err()
		}
	}
}

// waitOwn serves a request from this instance's own share while Redis does not answer,
// once the others can no longer be counting on it (ownFrom). Back on Redis meanwhile, the
// request goes to the shared budget again.
func (s *sharedBudget) waitOwn(ctx context.Context, p Priority, announce func()) error {
	for {
		if !s.down.Load() {
			return s.wait(ctx, p)
		}
		s.mu.Lock()
		if !s.down.Load() { // back on Redis meanwhile: nothing spent here goes unwritten
			s.mu.Unlock()
			return s.wait(ctx, p)
		}
		now := time.Now()
		from, until := s.ownFrom(), s.ownUntil()
		var (
			slot  time.Time
			taken bool
			again time.Duration
		)
		if now.Before(from) {
			again = from.Sub(now)
		} else if !now.Before(until) && !s.peersCutOffNow() {
			from, again = now.Add(peersCutOffEvery), peersCutOffEvery // spent while a peer may count it gone
		} else {
			maxWait := reserveAhead
			if dl, ok := ctx.Deadline(); ok {
				maxWait = min(max(time.Until(dl), 0), maxWait)
			}
			slot, taken, again = s.fallback.take(now, p, maxWait)
			if taken {
				// Only the last window's slots go back to Redis: a long outage for all
				// keeps no more than that.
				if len(s.offGrants) > 0 && now.Sub(s.offGrants[0]) > s.window {
					s.offGrants = slices.DeleteFunc(s.offGrants, func(g time.Time) bool { return now.Sub(g) > s.window })
				}
				s.offGrants = append(s.offGrants, slot)
				again = slot.Sub(now)
			}
		}
		s.mu.Unlock()
		if taken && again <= 0 {
			return nil
		}
		gated := !taken && now.Before(from)
		if gated {
			// Look again each heartbeat: a heartbeat in flight when the gate was read
			// may turn out never to have reached Redis, which moves the gate back.
			again = min(again, heartbeatEvery)
		}
		if !taken && !gated {
			if err := fitsDeadline(ctx, again); err != nil {
				return err
			}
			if p == PriorityCall {
				again -= reserveAhead
			}
		}
		announce()
		// Waiting for the share, Redis answering again serves the request at once: a
		// blip of Redis costs a call the heartbeat's interval, not its lookup.
		// A slot taken here is kept for its time (it goes to Redis with the heartbeat).
		var up <-chan struct{}
		if !taken {
			up = s.upSignal()
		}
		t := time.NewTimer(max(again, time.Millisecond))
		select {
		case <-t.C:
			if taken {
				return nil
			}
		case <-up:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			if taken {
				s.fallback.release(slot)
			}
			if gated && !now.Before(until) {
				return fmt.Errorf("%w: cut off for more than %v while a peer may reach it; this instance spends no more of the budget until Redis answers: %w",
					errBudgetUnreachable, s.ownFor, ctx.Err())
			}
			if gated {
				return fmt.Errorf("%w: this instance's own share of the budget would be free in %v, once its peers count it as cut off: %w",
					errBudgetUnreachable, time.Until(from).Round(time.Millisecond), ctx.Err())
			}
			return ctx.Err()
		}
	}
}

// upSignal is closed when Redis answers again after goDown (closed while it answers).
func (s *sharedBudget) upSignal() <-chan struct{} {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	return s.up
}

// closedSignal is the up signal of a budget that has not gone down.
var closedSignal = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// ownFrom is when this instance may spend its own share: at once when it is alone, else
// once every peer counts it as cut off and their slots taken before have left the window.
func (s *sharedBudget) ownFrom() time.Time {
	if s.instances <= 1 {
		return time.Time{}
	}
	return time.Unix(0, s.seenUntil.Load()).Add(aliveFor + reserveAhead + s.window)
}

// ownUntil is when an instance cut off from Redis stops spending its own share unless its
// peers are cut off too: never when it is alone.
func (s *sharedBudget) ownUntil() time.Time {
	if s.instances <= 1 {
		return time.Unix(1<<62, 0)
	}
	return time.Unix(0, s.downSince.Load()).Add(s.ownFor)
}

func (s *sharedBudget) peersCutOffNow() bool {
	return s.peersCutOff != nil && s.peersCutOff()
}

// goDown switches to the instance's own share after a failed look at Redis.
func (s *sharedBudget) goDown(err error) {
	s.upMu.Lock()
	wentDown := s.down.CompareAndSwap(false, true)
	if wentDown {
		s.up = make(chan struct{})
		s.downSince.Store(time.Now().UnixNano())
	}
	s.upMu.Unlock()
	if wentDown {
		wait := max(time.Until(s.ownFrom()), 0)
		s.log.Warn().Err(err).Int("share", s.fallback.n).Dur("share_free_in", wait).
			Msg("amoCRM budget: Redis does not answer; this instance spends its own share of the budget meanwhile")
	}
}

// take runs the script once.
func (s *sharedBudget) take(ctx context.Context, p Priority, member string) (bool, time.Duration, error) {
	call, maxWait := "0", int64(-1)
	if p == PriorityCall {
		call = "1"
	}
	if p == PriorityCall {
		maxWait = reserveAhead.Milliseconds()
	}
	if dl, ok := ctx.Deadline(); ok {
		maxWait = min(max(time.Until(dl).Milliseconds(), 0), max(maxWait, 0))
	}
	timeout := sharedBudgetTimeout
	if p == PriorityCall && s.instances <= 1 {
		// Alone, a slow Redis costs the call nothing: its own limiter serves at once. With
		// peers the own share is not free at once, so the call waits for Redis longer.
		timeout = sharedBudgetCallTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := budgetScript.Run(rctx, s.rdb, []string{s.key, s.seenKey}, s.n, s.window.Milliseconds(), s.reserve, call, maxWait, member,
		s.instances, shareOf(s.n, s.instances), aliveFor.Milliseconds(), s.id,
		s.reclaimAfter.Milliseconds(), time.Since(time.Unix(0, s.upSince.Load())).Milliseconds()).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("%w: %w", errBudgetUnreachable, err)
	}
	if len(res) != 3 {
		return false, 0, fmt.Errorf("%w: unexpected reply %v", errBudgetUnreachable, res)
	}
	if seen := int(res[2]); seen > s.instances {
		if s.crowded.CompareAndSwap(false, true) {
			s.log.Error().Int("instances_seen", seen).Int("instances_configured", s.instances).
				Msg("amoCRM budget: more crmlink instances spend this account's budget than cluster.peers says; list every other instance there, or a Redis outage can take the account past its rate")
		}
	}
	return res[0] == 1, time.Duration(res[1]) * time.Millisecond, nil
}

// release gives back a reserved slot whose caller stopped waiting.
func (s *sharedBudget) release(member string) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedBudgetTimeout)
	defer cancel()
	_ = s.rdb.ZRem(ctx, s.key, member).Err()
}

// run beats every heartbeatEvery until close.
func (s *sharedBudget) run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		if s.beat(ctx) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beat sends one heartbeat; while Redis does not answer, it first asks Redis the time (a
// look that changes nothing) and, when Redis answers, writes the slots spent meanwhile with
// the heartbeat and goes back to the shared budget. It reports whether the Redis client
// is closed.
func (s *sharedBudget) beat(ctx context.Context) (closed bool) {
	down := s.down.Load()
	if down || !s.offsetKnown.Load() {
		if err := s.syncClock(ctx); err != nil {
			if !down && ctx.Err() == nil {
				s.goDown(err)
			}
			return errors.Is(err, redis.ErrClosed)
		}
	}
	if down {
		// A heartbeat sent while Redis refuses writes can run out its time in retries
		// (go-redis retries NOREPLICAS, READONLY, LOADING), and one that may have run
		// moves the own share's gate on: first a write no peer reads shows that Redis
		// takes writes again.
		if err := s.probeWrite(ctx); err != nil {
			return errors.Is(err, redis.ErrClosed)
		}
	}
	var spent []time.Time
	if down {
		// mu is held through the heartbeat: every slot spent on this instance's own
		// before Redis counts it again goes with the heartbeat.
		s.mu.Lock()
		defer s.mu.Unlock()
		spent = s.offGrants
	}
	sent := time.Now()
	prevSeen := s.seenUntil.Load()
	s.seenUntil.Store(max(prevSeen, sent.Add(heartbeatValid+clockSlack).UnixNano()))
	args := []any{s.id, sent.Add(time.Duration(s.offset.Load()) + heartbeatValid).UnixMilli(), s.window.Milliseconds(),
		fmt.Sprintf("%s-r%d", s.id, s.seq.Add(1))}
	for _, g := range spent {
		if age := sent.Sub(g); age < s.window {
			args = append(args, age.Milliseconds())
		}
	}
	rctx, cancel := context.WithTimeout(ctx, sharedBudgetTimeout)
	res, err := heartbeatScript.Run(rctx, s.rdb, []string{s.key, s.seenKey}, args...).Int64Slice()
	cancel()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		if neverSent(err) {
			s.seenUntil.Store(prevSeen) // only this loop raises it
		}
		if !down && ctx.Err() == nil {
			s.goDown(fmt.Errorf("%w: heartbeat: %w", errBudgetUnreachable, err))
		}
		return errors.Is(err, redis.ErrClosed)
	}
	s.offset.Store(int64(time.UnixMilli(res[1]).Sub(sent.Add(time.Since(sent) / 2))))
	if res[0] == 0 {
		// It arrived too late to count (a slow Redis, or the clock offset drifted):
		// nothing was written; measure the clock again next time.
		s.offsetKnown.Store(false)
		return false
	}
	if down {
		s.offGrants = s.offGrants[:0]
		s.upMu.Lock()
		s.upSince.Store(time.Now().UnixNano())
		s.down.Store(false)
		close(s.up)
		s.upMu.Unlock()
		s.log.Info().Msg("amoCRM budget: Redis answers again; the instances share the budget again")
	}
	return false
}

// probeWrite writes a key of this instance's own (one hash slot with the budget) that
// nobody reads: whether Redis takes writes, without telling the peers anything.
func (s *sharedBudget) probeWrite(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, sharedBudgetTimeout)
	defer cancel()
	return s.rdb.Set(rctx, s.seenKey+":probe:"+s.id, 1, time.Second).Err()
}

// syncClock measures Redis's clock against ours with TIME.
func (s *sharedBudget) syncClock(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, sharedBudgetTimeout)
	defer cancel()
	sent := time.Now()
	now, err := s.rdb.Time(rctx).Result()
	if err != nil {
		return fmt.Errorf("%w: %w", errBudgetUnreachable, err)
	}
	s.offset.Store(int64(now.Sub(sent.Add(time.Since(sent) / 2))))
	s.offsetKnown.Store(true)
	return nil
}

// neverSent tells a heartbeat that cannot have been run from one that may have: no
// connection, a closed client, or Redis refusing the script before running it (a replica
// or a master without its replicas refusing writes, a loading or out-of-memory server).
func neverSent(err error) bool {
	var op *net.OpError
	if errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) || (errors.As(err, &op) && op.Op == "dial") {
		return true
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		for _, refused := range []string{"READONLY", "NOREPLICAS", "LOADING", "MASTERDOWN", "OOM", "CLUSTERDOWN", "MOVED", "ASK", "TRYAGAIN"} {
			if strings.HasPrefix(reply.Error(), refused+" ") {
				return true
			}
		}
	}
	return false
}
