package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmlink/crmlink/crm"
)

// DefaultRedisPrefix starts every key the Redis owner cache writes, so that the cache can
// share a Redis database with the event queue and be flushed on its own.
const DefaultRedisPrefix = "crmlink:owner:"

// RedisCache is the OwnerCache shared by several crmlink instances: an entry is a JSON
// string under <prefix>phone:<E.164> set with an expiry, and each entity's links are a SET
// of phones under <prefix>entity:<type>:<id> with the same expiry. Writes use a plain
// pipeline rather than MULTI so they also work on Redis Cluster, where the keys of one
// entry live in different slots; a link left behind by a half-applied write is harmless
// because readers check that the entry still names the entity.
type RedisCache struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisCache returns a cache on the client (single, Sentinel or Cluster). An empty
// prefix means DefaultRedisPrefix.
func NewRedisCache(rdb redis.UniversalClient, prefix string) *RedisCache {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &RedisCache{rdb: rdb, prefix: prefix}
}

func (c *RedisCache) phoneKey(p crm.Phone) string  { return c.prefix + "phone:" + string(p) }
func (c *RedisCache) entityKey(k EntityKey) string { return c.prefix + "entity:" + k.String() }

// Get implements OwnerCache.
func (c *RedisCache) Get(ctx context.Context, phone crm.Phone) (Entry, bool, error) {
	b, err := c.rdb.Get(ctx, c.phoneKey(phone)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("owner cache: get %s: %w", phone, err)
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return Entry{}, false, fmt.Errorf("owner cache: decode %s: %w: %w", phone, errUnreadable, err)
	}
	return e, true, nil
}

// Set implements OwnerCache.
func (c *RedisCache) Set(ctx context.Context, e Entry, ttl time.Duration) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("owner cache: encode %s: %w", e.Phone, err)
	}
	_, err = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, c.phoneKey(e.Phone), b, ttl)
		for _, k := range e.Entities() {
			key := c.entityKey(k)
			p.SAdd(ctx, key, string(e.Phone))
			p.Expire(ctx, key, ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("owner cache: set %s: %w", e.Phone, err)
	}
	return nil
}

// Delete implements OwnerCache. The phone's links are left to expire (see RedisCache).
func (c *RedisCache) Delete(ctx context.Context, phone crm.Phone) error {
	if err := c.rdb.Del(ctx, c.phoneKey(phone)).Err(); err != nil {
		return fmt.Errorf("owner cache: delete %s: %w", phone, err)
	}
	return nil
}

// Phones implements OwnerCache.
func (c *RedisCache) Phones(ctx context.Context, key EntityKey) ([]crm.Phone, error) {
	members, err := c.rdb.SMembers(ctx, c.entityKey(key)).Result()
	if err != nil {
		return nil, fmt.Errorf("owner cache: phones of %s: %w", key, err)
	}
	out := make([]crm.Phone, len(members))
	for i, m := range members {
		out[i] = crm.Phone(m)
	}
	return out, nil
}

// Unlink implements OwnerCache.
func (c *RedisCache) Unlink(ctx context.Context, key EntityKey) error {
	if err := c.rdb.Del(ctx, c.entityKey(key)).Err(); err != nil {
		return fmt.Errorf("owner cache: unlink %s: %w", key, err)
	}
	return nil
}
