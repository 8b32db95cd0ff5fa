package replicated

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
)

func TestMain(m *testing.M) { testrig.Main(m) }

// A write counts once the replicas asked for hold it: on a master with a replica in sync
// it is confirmed, on a lone master or one whose replica stopped copying it is not (and
// says how many confirmed), and with none asked for it only runs.
func TestWriteWaitsForTheReplicas(t *testing.T) {
	pair := testrig.NewRedisPair(t)
	lone := testrig.PrivateRedis(t)
	for _, tc := range []struct {
		name     string
		addr     string
		replicas int
		hold     bool
		err      string
	}{
		{"no replica asked for", lone, 0, false, ""},
		{"lone master", lone, 1, false, "0 of 1 Redis replicas confirmed it within 100ms: a failover now could lose it"},
		{"replica in sync", pair.Master, 1, false, ""},
		{"replica held back", pair.Master, 1, true, "0 of 1 Redis replicas confirmed it within 100ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: tc.addr})
			t.Cleanup(func() { _ = rdb.Close() })
			if tc.hold {
				pair.Hold()
			}
			ctx := context.Background()
			err := Write(ctx, rdb, tc.replicas, 100*time.Millisecond, func(p redis.Pipeliner) { p.Set(ctx, "k:"+tc.name, "v", 0) })
			if tc.err == "" {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrUnconfirmed)
				assert.ErrorContains(t, err, tc.err)
			}
			assert.Equal(t, "v", rdb.Get(ctx, "k:"+tc.name).Val(), "the master has it either way")
		})
	}
}
