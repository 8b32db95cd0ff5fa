package rules

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmlink/crmlink/crm"
)

// DefaultRedisPrefix starts every key RedisState writes, so the engine's state can share a
// Redis database with the owner cache and the event queue and be flushed on its own.
const DefaultRedisPrefix = "crmlink:rules:"

// RedisState is the State shared by several crmlink instances: an action key is a string
// (empty when only marked done, the stored value otherwise) set with an expiry; a number's
// task deadline is <prefix>task:<E.164> holding Unix milliseconds. Every operation touches
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
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("rules state: task deadline of %s: %q is not Unix milliseconds", phone, v)
	}
	return time.UnixMilli(ms), nil
}

// extendScript keeps the later of the stored and the new deadline in one round trip, so
// two instances recording tasks for one number never move the deadline back.
var extendScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1`)

// ExtendTaskUntil implements State.
func (s *RedisState) ExtendTaskUntil(ctx context.Context, phone crm.Phone, until time.Time, ttl time.Duration) error {
	err := extendScript.Run(ctx, s.rdb, []string{s.taskKey(phone)},
		until.UnixMilli(), positive(ttl).Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("rules state: record task deadline of %s: %w", phone, err)
	}
	return nil
}

var _ State = (*RedisState)(nil)
