package intake

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/crmlink/crmlink/crm"
)

// DefaultRedisPrefix starts every key RedisRotation writes.
const DefaultRedisPrefix = "crmlink:leads:"

// RedisRotation is the Rotation shared by several instances: one key per group,
// <prefix>turn:<group>, holding the user the group's last client went to. A Lua script
// reads and moves it in one step, so two instances never give two clients the same turn;
// one key per call, so it works on Redis Cluster.
type RedisRotation struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisRotation returns a Rotation on the client; an empty prefix means
// DefaultRedisPrefix.
func NewRedisRotation(rdb redis.UniversalClient, prefix string) *RedisRotation {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &RedisRotation{rdb: rdb, prefix: prefix}
}

// nextScript is nextAfter in Lua. ARGV: n, the n members, then n flags ("1" available).
var nextScript = redis.NewScript(`
local n = tonumber(ARGV[1])
local last = redis.call('GET', KEYS[1])
local start = 0
if last then
  for i = 1, n do
    if ARGV[1 + i] == last then start = i break end
  end
end
for k = 0, n - 1 do
  local i = (start + k) % n + 1
  if ARGV[1 + n + i] == '1' then
    redis.call('SET', KEYS[1], ARGV[1 + i])
    return ARGV[1 + i]
  end
end
return false
`)

// Next implements Rotation.
func (r *RedisRotation) Next(ctx context.Context, group string, members []crm.UserID, available []bool) (crm.UserID, error) {
	if len(members) == 0 {
		return 0, nil
	}
	args := make([]any, 0, 1+2*len(members))
	args = append(args, len(members))
	for _, m := range members {
		args = append(args, strconv.FormatInt(int64(m), 10))
	}
	for i := range members {
		args = append(args, map[bool]string{true: "1", false: "0"}[available[i]])
	}
	s, err := nextScript.Run(ctx, r.rdb, []string{r.prefix + "turn:" + group}, args...).Text()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("leads rotation: group %q: %w", group, err)
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("leads rotation: group %q: stored turn %q is not a user id", group, s)
	}
	return crm.UserID(id), nil
}

var _ Rotation = (*RedisRotation)(nil)
