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
// When Redis does not answer within sharedBudgetTimeout, the request is served by the
// process's own limiter (the same n per window) and Redis is left alone for
// sharedBudgetRetry: routing never waits on Redis. While Redis is unreachable each
// instance spends up to the whole budget on its own, so N instances cut off from Redis
// together may send up to N times the rate; amoCRM answers the excess with 429, which the
// client retries within the caller's deadline. An instance cut off from Redis while its
// peers reach it steps aside (internal/app's cluster check), so in practice that is the
// case of Redis down for everyone.
type sharedBudget struct {
	rdb     redis.UniversalClient
	key     string
	n       int
	window  time.Duration
	reserve int
	local   *limiter
	log     zerolog.Logger

	id        string
	seq       atomic.Uint64
	downUntil atomic.Int64 // unix ns before which the local limiter serves
}

func newSharedBudget(rdb redis.UniversalClient, key string, local *limiter, log zerolog.Logger) *sharedBudget {
	if key == "" {
		key = DefaultSharedBudgetKey
	}
	host, _ := os.Hostname()
	return &sharedBudget{rdb: rdb, key: key, n: local.n, window: local.window, reserve: local.reserve, local: local, log: log,
		id: fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano())}
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
		if time.Now().UnixNano() < s.downUntil.Load() {
			return s.local.wait(ctx, p)
		}
		member := fmt.Sprintf("%s-%d", s.id, s.seq.Add(1))
		taken, wait, err := s.take(ctx, p, member)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.downUntil.Store(time.Now().Add(sharedBudgetRetry).UnixNano())
			s.log.Warn().Err(err).Dur("for", sharedBudgetRetry).Msg("amoCRM budget: Redis does not answer; this instance keeps its own count of 7/s meanwhile")
			return s.local.wait(ctx, p)
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
