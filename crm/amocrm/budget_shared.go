package amocrm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// DefaultSharedBudgetKey is the Redis key of the account budget several crmlink instances
// share (a sorted set of the slots handed out, one hash slot on Redis Cluster).
const DefaultSharedBudgetKey = "{crmlink:amocrm}:budget"

const (
	// sharedBudgetTimeout bounds one look at the shared budget: a call is being set up, and
	// a Redis that does not answer within it is treated as gone.
	sharedBudgetTimeout = 150 * time.Millisecond
	// sharedBudgetRetry is how long the local limiter stands in after a failed look, so
	// that a dead Redis costs one timeout per interval, not one per request.
	sharedBudgetRetry = 2 * time.Second
)

// sharedBudget is the limiter's algorithm run inside Redis, so that every crmlink instance
// of one amoCRM account spends one budget: at most n requests in any window, call-path
// requests reserving the next free slot (even a future one), background requests taking
// only a slot free now and at most n-reserve of any window. Redis's own clock (TIME) times
// the slots, so the instances' clocks need not agree; each instance waits the returned
// delay on its own clock.
//
// When Redis does not answer within sharedBudgetTimeout (down, failing over, refusing
// writes), the request is served by a local limiter holding this instance's share of the
// budget (n divided by the instances, at least 1) and Redis is left alone for
// sharedBudgetRetry: routing never waits on Redis, and instances cut off together still
// keep the account within its budget. Back on Redis, the slots the local limiter handed out
// in the last window are written to the shared budget first, so the second after an outage
// is not spent twice. An instance alone (Instances 1) falls back to the whole budget.
type sharedBudget struct {
	rdb     redis.UniversalClient
	key     string
	n       int
	window  time.Duration
	reserve int
	// local counts the instance's own requests for the waiting hook; fallback serves while
	// Redis does not answer (local itself when the instance is alone).
	local    *limiter
	fallback *limiter
	log      zerolog.Logger

	id        string
	seq       atomic.Uint64
	downUntil atomic.Int64 // unix ns before which the local limiter serves
}

func newSharedBudget(rdb redis.UniversalClient, key string, instances int, local *limiter, log zerolog.Logger) *sharedBudget {
	if key == "" {
		key = DefaultSharedBudgetKey
	}
	fallback := local
	if instances > 1 {
		share := max(local.n/instances, 1)
		fallback = newLimiter(share, local.window).reserveForCalls(min(local.reserve, share-1))
		fallback.onWait = local.onWait
	}
	host, _ := os.Hostname()
	return &sharedBudget{rdb: rdb, key: key, n: local.n, window: local.window, reserve: local.reserve, local: local, fallback: fallback,
		log: log, id: fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano())}
}

// importScript records slots handed out without Redis. KEYS: the budget zset. ARGV: the
// window (ms), the member prefix, then each slot's age (ms, before now).
var importScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[1], now - tonumber(ARGV[i]), ARGV[2] .. '-' .. i)
end
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[1]))
return #ARGV - 2
`)

// recover writes the fallback's slots of the last window to Redis; false when Redis still
// does not answer.
func (s *sharedBudget) recover(ctx context.Context) bool {
	s.fallback.mu.Lock()
	now := time.Now()
	s.fallback.prune(now)
	args := []any{s.window.Milliseconds(), fmt.Sprintf("%s-r%d", s.id, s.seq.Add(1))}
	for _, g := range s.fallback.grants {
		args = append(args, max(now.Sub(g).Milliseconds(), 0))
	}
	s.fallback.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, sharedBudgetTimeout)
	defer cancel()
	return importScript.Run(rctx, s.rdb, []string{s.key}, args...).Err() == nil
}

// budgetScript hands out one slot. KEYS: the budget zset. ARGV: n, window (ms), the
// class's limit per window, reserve a future slot (1 call, 0 background), the longest wait
// the caller can afford (ms; -1 none), the member naming this request. Returns {taken,
// wait ms}: taken 1 with the wait before sending, or taken 0 with when to look again
// (background) or how long the call would have had to wait (past its deadline).
var budgetScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n, win, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
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
  return {0, wait}
end
redis.call('ZADD', KEYS[1], slot, ARGV[6])
redis.call('PEXPIRE', KEYS[1], wait + 2 * win)
return {1, wait}
`)

// errBudgetUnreachable marks a failed look at the shared budget.
var errBudgetUnreachable = errors.New("shared amoCRM budget in Redis unreachable")

func (s *sharedBudget) wait(ctx context.Context, p Priority) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	announced := false
	for {
		if down := s.downUntil.Load(); down != 0 {
			if time.Now().UnixNano() < down || !s.recover(ctx) {
				s.downUntil.CompareAndSwap(down, max(down, time.Now().Add(sharedBudgetRetry).UnixNano()))
				return s.fallback.wait(ctx, p)
			}
			if s.downUntil.CompareAndSwap(down, 0) {
				s.log.Info().Msg("amoCRM budget: Redis answers again; the instances share the budget again")
			}
		}
		member := fmt.Sprintf("%s-%d", s.id, s.seq.Add(1))
		taken, wait, err := s.take(ctx, p, member)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if s.downUntil.CompareAndSwap(0, time.Now().Add(sharedBudgetRetry).UnixNano()) {
				s.log.Warn().Err(err).Int("share", s.fallback.n).Msg("amoCRM budget: Redis does not answer; this instance spends its share of the budget on its own meanwhile")
			}
			return s.fallback.wait(ctx, p)
		}
		if taken && wait <= 0 {
			return nil
		}
		if !taken {
			if err := fitsDeadline(ctx, wait); err != nil {
				return err
			}
			wait = max(wait, time.Millisecond)
		}
		if !announced {
			s.local.waiting(p)
			announced = true
		}
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

// take runs the script once.
func (s *sharedBudget) take(ctx context.Context, p Priority, member string) (bool, time.Duration, error) {
	limit, call, maxWait := s.n-s.reserve, "0", int64(-1)
	if p == PriorityCall {
		limit, call = s.n, "1"
	}
	if dl, ok := ctx.Deadline(); ok {
		maxWait = max(time.Until(dl).Milliseconds(), 0)
	}
	rctx, cancel := context.WithTimeout(ctx, sharedBudgetTimeout)
	defer cancel()
	res, err := budgetScript.Run(rctx, s.rdb, []string{s.key}, s.n, s.window.Milliseconds(), limit, call, maxWait, member).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("%w: %w", errBudgetUnreachable, err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("%w: unexpected reply %v", errBudgetUnreachable, res)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Millisecond, nil
}

// release gives back a reserved slot whose caller stopped waiting.
func (s *sharedBudget) release(member string) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedBudgetTimeout)
	defer cancel()
	_ = s.rdb.ZRem(ctx, s.key, member).Err()
}
