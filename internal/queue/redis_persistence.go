package queue

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisPersistence is what a Redis server writes to disk, and so what of the queue
// survives a restart of the server or a crash of its host.
type RedisPersistence struct {
	AppendOnly bool
	// AppendFsync is "always", "everysec" or "no"; "" when the server does not tell.
	AppendFsync string
	// Save is the snapshot schedule ("3600 1 300 100"); "" for none.
	Save string
	// MaxmemoryPolicy is what Redis drops when it reaches maxmemory; an allkeys-* policy
	// may drop the queue's keys. "" when unknown.
	MaxmemoryPolicy string
	// FromInfo: CONFIG GET was refused (a managed Redis often disables it), so only
	// INFO's aof_enabled is known.
	FromInfo bool
}

// ReadRedisPersistence asks the server rdb talks to for its persistence settings.
func ReadRedisPersistence(ctx context.Context, rdb redis.UniversalClient) (RedisPersistence, error) {
	var p RedisPersistence
	cfg := map[string]string{}
	for _, key := range []string{"appendonly", "appendfsync", "save", "maxmemory-policy"} {
		kv, err := rdb.ConfigGet(ctx, key).Result()
		if err != nil {
			return readPersistenceInfo(ctx, rdb, err)
		}
		cfg[key] = kv[key]
	}
	p.AppendOnly = cfg["appendonly"] == "yes"
	p.AppendFsync, p.Save, p.MaxmemoryPolicy = cfg["appendfsync"], cfg["save"], cfg["maxmemory-policy"]
	return p, nil
}

func readPersistenceInfo(ctx context.Context, rdb redis.UniversalClient, configErr error) (RedisPersistence, error) {
	info, err := rdb.Info(ctx, "persistence").Result()
	if err != nil {
		return RedisPersistence{}, fmt.Errorf("queue: read Redis persistence: CONFIG GET: %v; INFO: %w", configErr, err)
	}
	p := RedisPersistence{FromInfo: true}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "aof_enabled:"); ok {
			p.AppendOnly = v == "1"
			return p, nil
		}
	}
	return p, fmt.Errorf("queue: read Redis persistence: CONFIG GET: %v; INFO persistence has no aof_enabled", configErr)
}

// String is the settings as redis.conf spells them.
func (p RedisPersistence) String() string {
	if p.FromInfo {
		return fmt.Sprintf("aof_enabled:%d (CONFIG GET refused)", map[bool]int{false: 0, true: 1}[p.AppendOnly])
	}
	if p.AppendOnly {
		return fmt.Sprintf("appendonly yes, appendfsync %s", p.AppendFsync)
	}
	return fmt.Sprintf("appendonly no, save %q", p.Save)
}

// settingsToUse is the advice every risk ends with.
const settingsToUse = "set appendonly yes and appendfsync everysec in redis.conf (docs/deploy.md, \"Data safety\")"

// Risk says what a restart of the Redis server or a crash of its host loses of the queue,
// and what to set; "" when it is at most about the last second of events (an append-only
// file synced every second or on every write) and Redis never evicts the queue's keys.
func (p RedisPersistence) Risk() string {
	const held = "call outcomes and chat events not yet written to amoCRM, the retry schedule and the dead-letter list"
	var risk string
	switch {
	case p.AppendOnly && p.AppendFsync == "no":
		risk = fmt.Sprintf("Redis writes its append-only file without syncing it (%s): a crash of the Redis host loses the queued events the OS had not flushed yet, up to about 30 s of %s; set appendfsync everysec", p, held)
	case p.AppendOnly:
	case p.FromInfo || p.Save != "":
		risk = fmt.Sprintf("Redis keeps no append-only file (%s): a restart or crash of Redis loses everything queued since its last snapshot, if any: %s; %s", p, held, settingsToUse)
	default:
		risk = fmt.Sprintf("Redis has no persistence (%s): a restart or crash of Redis loses every queued event: %s; %s", p, held, settingsToUse)
	}
	if strings.HasPrefix(p.MaxmemoryPolicy, "allkeys-") {
		evict := fmt.Sprintf("Redis evicts any key when full (maxmemory-policy %s): under memory pressure it drops queued events without a trace; set maxmemory-policy noeviction", p.MaxmemoryPolicy)
		risk = strings.TrimPrefix(risk+". "+evict, ". ")
	}
	return risk
}
