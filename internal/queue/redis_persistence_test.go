package queue

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
)

// Without persistence a Redis restart lost 409 of 454 acknowledged events: crmlink must say
// so, naming what is lost and what to set. The cases change the server's own settings, so
// they run on a private redis-server, never on the rig's shared one.
func TestRedisPersistenceRisk(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testrig.PrivateRedis(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	for _, c := range []struct {
		name string
		set  []string // CONFIG SET key value pairs
		want []string // in the risk; none: no risk
	}{
		{"nothing persisted", []string{"appendonly", "no", "save", ""},
			[]string{`Redis has no persistence (appendonly no, save "")`, "loses every queued event", "call outcomes and chat events not yet written to amoCRM", "dead-letter list", "set appendonly yes and appendfsync everysec"}},
		{"snapshots only", []string{"appendonly", "no", "save", "3600 1 300 100"},
			[]string{`appendonly no, save "3600 1 300 100"`, "loses everything queued since its last snapshot", "set appendonly yes and appendfsync everysec"}},
		{"append-only file never synced", []string{"appendonly", "yes", "appendfsync", "no"},
			[]string{"appendonly yes, appendfsync no", "crash of the Redis host", "up to about 30 s", "set appendfsync everysec"}},
		{"synced every second", []string{"appendonly", "yes", "appendfsync", "everysec"}, nil},
		{"synced on every write", []string{"appendonly", "yes", "appendfsync", "always", "save", ""}, nil},
		{"evicts any key when full", []string{"maxmemory-policy", "allkeys-lru"},
			[]string{"maxmemory-policy allkeys-lru", "drops queued events", "set maxmemory-policy noeviction"}},
		{"no persistence and eviction", []string{"appendonly", "no", "save", ""},
			[]string{"Redis has no persistence", "set appendonly yes", "set maxmemory-policy noeviction"}},
		{"evicts only keys with a time to live", []string{"appendonly", "yes", "maxmemory-policy", "volatile-lru"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i := 0; i < len(c.set); i += 2 {
				require.NoError(t, rdb.ConfigSet(ctx, c.set[i], c.set[i+1]).Err())
			}
			p, err := ReadRedisPersistence(ctx, rdb)
			require.NoError(t, err)
			risk := p.Risk()
			if c.want == nil {
				assert.Empty(t, risk, "settings %s", p)
				return
			}
			for _, w := range c.want {
				assert.Contains(t, risk, w)
			}
		})
	}
}

// A managed Redis often refuses CONFIG: INFO still tells whether an append-only file is kept.
func TestRedisPersistenceWithoutConfigCommand(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testrig.PrivateRedis(t, "--rename-command", "CONFIG", "")})
	t.Cleanup(func() { _ = rdb.Close() })
	p, err := ReadRedisPersistence(context.Background(), rdb)
	require.NoError(t, err)
	assert.True(t, p.FromInfo)
	assert.Contains(t, p.Risk(), "Redis keeps no append-only file (aof_enabled:0 (CONFIG GET refused))")
	assert.Contains(t, p.Risk(), "set appendonly yes and appendfsync everysec")
}
