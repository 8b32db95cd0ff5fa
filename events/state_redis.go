package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

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
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisState returns a State on the client (single, Sentinel or Cluster). An empty
// prefix means DefaultRedisPrefix.
func NewRedisState(rdb redis.UniversalClient, prefix string) *RedisState {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &RedisState{rdb: rdb, prefix: prefix}
}

func (s *RedisState) key(k string) string        { return s.prefix + k }
func (s *RedisState) taskKey(p crm.Phone) string { return s.prefix + "task:" + string(p) }
func positive(ttl time.Duration) time.Duration {
	return max(ttl, time.Millisecond)
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
	if err := s.rdb.Set(ctx, s.key(key), value, positive(ttl)).Err(); err != nil {
		return fmt.Errorf("rules state: set %s: %w", key, err)
	}
	return nil
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
	held, err := claimScript.Run(ctx, s.rdb, []string{s.taskKey(phone)},
		now.UnixMilli(), claimant, until.UnixMilli(), positive(ttl).Milliseconds()).Int64()
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
	if err := releaseScript.Run(ctx, s.rdb, []string{s.taskKey(phone)}, claimant).Err(); err != nil {
		return fmt.Errorf("rules state: release the task window of %s: %w", phone, err)
	}
	return nil
}

var _ State = (*RedisState)(nil)
