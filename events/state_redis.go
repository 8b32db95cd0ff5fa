package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmlink/crmlink/internal/replicated"

	"github.com/crmlink/crmlink/crm"
)

// DefaultRedisPrefix starts every key RedisState writes, so the engine's state can share a
// Redis database with the owner cache and the event queue and be flushed on its own.
const DefaultRedisPrefix = "crmlink:rules:"

// RedisState is the State shared by several crmlink instances: an action key is a string
// (empty when only marked done, the stored value otherwise) set with an expiry; a number's
// task window is <prefix>task:<E.164> holding "<deadline in Unix milliseconds> <claimant>". Every operation touches
// one key, so it works on Redis Cluster as well.
type RedisState struct {
	rdb      redis.UniversalClient
	prefix   string
	replicas int
	timeout  time.Duration
}

// RedisStateOption configures NewRedisState.
type RedisStateOption func(*RedisState)

// WaitReplicas makes every write return only once n replicas of the Redis master hold it
// (WAIT, bounded by timeout; 0 means 1 s). The plan, a step's begun mark and its record
// guard a CRM write that cannot be undone: stored on the master alone, a failover to a
// replica that never got them would let the next attempt write again (a second contact).
// A write fewer replicas confirm fails, so its step's CRM write does not go out and the
// event is retried. n 0 (the default): the master's answer is enough.
func WaitReplicas(n int, timeout time.Duration) RedisStateOption {
	return func(s *RedisState) {
		s.replicas, s.timeout = max(n, 0), timeout
		if s.timeout <= 0 {
			s.timeout = time.Second
		}
	}
}

// NewRedisState returns a State on the client (single, Sentinel or Cluster). An empty
// prefix means DefaultRedisPrefix.
func NewRedisState(rdb redis.UniversalClient, prefix string, opts ...RedisStateOption) *RedisState {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	s := &RedisState{rdb: rdb, prefix: prefix}
	for _, o := range opts {
		o(s)
	}
	return s
}

// write runs cmd and, with WaitReplicas, WAIT after it on the same connection (one
// pipeline): the write counts only once that many replicas hold it.
func (s *RedisState) write(ctx context.Context, what string, cmd func(redis.Cmdable) redis.Cmder) (redis.Cmder, error) {
	if s.replicas == 0 {
		c := cmd(s.rdb)
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return c, fmt.Errorf("rules state: %s: %w", what, err)
		}
		return c, nil
	}
	var c redis.Cmder
	err := replicated.Write(ctx, s.rdb, s.replicas, s.timeout, func(p redis.Pipeliner) { c = cmd(p) })
	if err != nil {
		return c, fmt.Errorf("rules state: %s: %w", what, err)
	}
	return c, nil
}

func (s *RedisState) key(k string) string        { return s.prefix + k }
func (s *RedisState) taskKey(p crm.Phone) string { return s.prefix + "task:" + string(p) }
func positive(ttl time.Duration) time.Duration {
	return max(ttl, time.Millisecond)
}

// runScript runs sc on c: by its SHA on a client (loading it when Redis does not know it),
// whole in a pipeline, where a missing script would only show when the pipeline has run.
func runScript(ctx context.Context, c redis.Cmdable, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	if _, ok := c.(redis.Pipeliner); ok {
		return sc.Eval(ctx, c, keys, args...)
	}
	return sc.Run(ctx, c, keys, args...)
}

// Done implements State.
func (s *RedisState) Done(ctx context.Context, key string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.key(key)).Result()
	if err != nil {
		return false, fmt.Errorf("rules state: exists %s: %w", key, err)
	}
	return n == 1, nil
}

// MarkDone implements State.
func (s *RedisState) MarkDone(ctx context.Context, key string, ttl time.Duration) error {
	return s.Save(ctx, key, nil, ttl)
}

// Save implements State.
func (s *RedisState) Save(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := s.write(ctx, "set "+key, func(c redis.Cmdable) redis.Cmder {
		return c.Set(ctx, s.key(key), value, positive(ttl))
	})
	return err
}

// Load implements State.
func (s *RedisState) Load(ctx context.Context, key string) ([]byte, bool, error) {
	b, err := s.rdb.Get(ctx, s.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("rules state: get %s: %w", key, err)
	}
	return b, true, nil
}

// TaskUntil implements State.
func (s *RedisState) TaskUntil(ctx context.Context, phone crm.Phone) (time.Time, error) {
	v, err := s.rdb.Get(ctx, s.taskKey(phone)).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("rules state: task deadline of %s: %w", phone, err)
	}
	ms, _, _ := strings.Cut(v, " ")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("rules state: task deadline of %s: %q does not start with Unix milliseconds", phone, v)
	}
	return time.UnixMilli(n), nil
}

// claimScript checks and records a task window in one step: another claimant's deadline
// after now wins (and is returned), otherwise the claim is set. A value of an older
// crmlink holds the deadline alone.
var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  local sp = string.find(v, ' ', 1, true)
  local ms = tonumber(sp and string.sub(v, 1, sp - 1) or v) or 0
  local who = sp and string.sub(v, sp + 1) or ''
  if ms > tonumber(ARGV[1]) and who ~= ARGV[2] then
    return ms
  end
end
redis.call('SET', KEYS[1], ARGV[3] .. ' ' .. ARGV[2], 'PX', ARGV[4])
return 0`)

// ClaimTask implements State.
func (s *RedisState) ClaimTask(ctx context.Context, phone crm.Phone, claimant string, now, until time.Time, ttl time.Duration) (time.Time, error) {
	c, err := s.write(ctx, "claim the task window of "+string(phone), func(c redis.Cmdable) redis.Cmder {
		return runScript(ctx, c, claimScript, []string{s.taskKey(phone)},
			now.UnixMilli(), claimant, until.UnixMilli(), positive(ttl).Milliseconds())
	})
	if err != nil {
		return time.Time{}, err
	}
	held, err := c.(*redis.Cmd).Int64()
	if err != nil {
		return time.Time{}, fmt.Errorf("rules state: claim the task window of %s: %w", phone, err)
	}
	if held == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(held), nil
}

// releaseScript drops a task window only if the claimant still holds it.
var releaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  local sp = string.find(v, ' ', 1, true)
  if sp and string.sub(v, sp + 1) == ARGV[1] then
    redis.call('DEL', KEYS[1])
  end
end
return 1`)

// ReleaseTask implements State.
func (s *RedisState) ReleaseTask(ctx context.Context, phone crm.Phone, claimant string) error {
	_, err := s.write(ctx, "release the task window of "+string(phone), func(c redis.Cmdable) redis.Cmder {
		return runScript(ctx, c, releaseScript, []string{s.taskKey(phone)}, claimant)
	})
	return err
}

var _ State = (*RedisState)(nil)
