package chatbridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix starts every key RedisGuard writes, so the guard can share a Redis
// database with the owner cache, the rules state and the event queue.
const DefaultRedisPrefix = "crmlink:chat:"

// RedisGuard is the GuardStore shared by several crmlink instances. A mark is
// <prefix>mark:<target> holding "<deadline ms>|<value>"; a clock is <prefix>clock:<key>
// holding Unix milliseconds. Deadlines are read against the caller's time; Redis expiry
// only cleans up (a little after the deadline, on the guard's clock). Every operation
// touches one key, so it works on Redis Cluster as well.
type RedisGuard struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
}

// markSlack keeps a mark's key a little past its deadline, so clock skew between
// instances cannot drop a mark another instance still considers held.
const markSlack = 2 * time.Second

// NewRedisGuard returns a GuardStore on the client (single, Sentinel or Cluster). An empty
// prefix means DefaultRedisPrefix; now (nil: time.Now) turns deadlines into key expiries.
func NewRedisGuard(rdb redis.UniversalClient, prefix string, now func() time.Time) *RedisGuard {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	if now == nil {
		now = time.Now
	}
	return &RedisGuard{rdb: rdb, prefix: prefix, now: now}
}

func (g *RedisGuard) markKey(t string) string  { return g.prefix + "mark:" + t }
func (g *RedisGuard) clockKey(k string) string { return g.prefix + "clock:" + k }

// Mark implements GuardStore.
func (g *RedisGuard) Mark(ctx context.Context, target, value string, until time.Time) error {
	ttl := max(until.Sub(g.now()), 0) + markSlack
	v := strconv.FormatInt(until.UnixMilli(), 10) + "|" + value
	if err := g.rdb.Set(ctx, g.markKey(target), v, ttl).Err(); err != nil {
		return fmt.Errorf("chat guard: mark %s: %w", target, err)
	}
	return nil
}

// Marked implements GuardStore.
func (g *RedisGuard) Marked(ctx context.Context, target string, now time.Time) (string, bool, error) {
	s, err := g.rdb.Get(ctx, g.markKey(target)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("chat guard: read mark %s: %w", target, err)
	}
	ms, value, ok := strings.Cut(s, "|")
	until, perr := strconv.ParseInt(ms, 10, 64)
	if !ok || perr != nil {
		return "", false, fmt.Errorf("chat guard: mark %s holds %q, not <deadline ms>|<value>", target, s)
	}
	if !now.Before(time.UnixMilli(until)) {
		return "", false, nil
	}
	return value, true, nil
}

// Unmark implements GuardStore.
func (g *RedisGuard) Unmark(ctx context.Context, target string) error {
	if err := g.rdb.Del(ctx, g.markKey(target)).Err(); err != nil {
		return fmt.Errorf("chat guard: unmark %s: %w", target, err)
	}
	return nil
}

// advanceScript moves a clock forward only, in one round trip, so two instances applying
// changes for one client never move it back. Returns 1 when ARGV[1] is not older.
var advanceScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '')
if cur and tonumber(ARGV[1]) < cur then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

// Advance implements GuardStore.
func (g *RedisGuard) Advance(ctx context.Context, key string, at time.Time, keep time.Duration) (bool, error) {
	n, err := advanceScript.Run(ctx, g.rdb, []string{g.clockKey(key)}, at.UnixMilli(), positive(keep).Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("chat guard: advance %s: %w", key, err)
	}
	return n == 1, nil
}

// Swap implements GuardStore.
func (g *RedisGuard) Swap(ctx context.Context, key string, at time.Time, keep time.Duration) (time.Time, error) {
	prev, err := g.rdb.SetArgs(ctx, g.clockKey(key), at.UnixMilli(), redis.SetArgs{TTL: positive(keep), Get: true}).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("chat guard: swap %s: %w", key, err)
	}
	return parseMillis(key, prev)
}

// Latest implements GuardStore.
func (g *RedisGuard) Latest(ctx context.Context, key string) (time.Time, bool, error) {
	s, err := g.rdb.Get(ctx, g.clockKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("chat guard: read %s: %w", key, err)
	}
	t, err := parseMillis(key, s)
	return t, err == nil, err
}

func parseMillis(key, s string) (time.Time, error) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("chat guard: %s holds %q, not Unix milliseconds", key, s)
	}
	return time.UnixMilli(ms), nil
}

func positive(d time.Duration) time.Duration { return max(d, time.Millisecond) }

var _ GuardStore = (*RedisGuard)(nil)
