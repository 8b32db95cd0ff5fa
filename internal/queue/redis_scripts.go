package queue

import "github.com/redis/go-redis/v9"

// The scripts settle a stream entry only if it is still pending (XACK returns 1): when a
// slow consumer and the one that claimed its entry both finish, the second finds nothing
// to settle and does not schedule a duplicate retry or count twice. All keys share the
// stream's hash slot, so the scripts run on Redis Cluster too. Each also drops the event's
// lease (the last key: the event's, or its order key's) if this consumer's entry still
// holds it (the last argument).

// KEYS: stream, stats, lease. ARGV: group, entry id, lease value.
var ackScript = redis.NewScript(`
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('HINCRBY', KEYS[2], 'processed', 1)
  return 1
end
return 0
`)

// KEYS: stream, retry zset, stats, lease, the order key's block. ARGV: group, entry id, due
// (unix ms), event JSON, failed (1 counts a failure), lease value, the failed event's ID
// ("": none) and for how many ms the block holds. A failed event that held its order key's
// lease blocks the key until a little after its retry is due, so that no instance runs a
// later event of the client before it (takeKeyLease).
var retryScript = redis.NewScript(`
local held = redis.call('GET', KEYS[4]) == ARGV[6]
if held then redis.call('DEL', KEYS[4]) end
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  if ARGV[5] == '1' then
    redis.call('HINCRBY', KEYS[3], 'failures', 1)
  end
  if held and ARGV[7] ~= '' then
    redis.call('SET', KEYS[5], ARGV[7], 'PX', ARGV[8])
  end
  return 1
end
return 0
`)

// KEYS: stream, dead hash, dead order zset, stats, lease. ARGV: group, entry id, event id,
// event JSON, died at (unix ms), lease value.
var buryScript = redis.NewScript(`
if redis.call('GET', KEYS[5]) == ARGV[6] then redis.call('DEL', KEYS[5]) end
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
  redis.call('HINCRBY', KEYS[4], 'failures', 1)
  return 1
end
return 0
`)

// Moves due retries back to the stream in due order, with the order key the event carries
// (Redis.retry stores it in the event) beside it, as Publish stores it. KEYS: retry zset,
// stream. ARGV: now (unix ms), batch size, stream MAXLEN.
var moveDueScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, e in ipairs(due) do
  local ok, ev = pcall(cjson.decode, e)
  if ok and type(ev) == 'table' and type(ev.key) == 'string' and ev.key ~= '' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'event', e, 'key', ev.key)
  else
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'event', e)
  end
  redis.call('ZREM', KEYS[1], e)
end
return #due
`)

// Replays a dead event if it is unchanged since it was read (the Go side rewrites the
// JSON). KEYS: dead hash, dead order zset, stream. ARGV: event id, old JSON, new JSON,
// stream MAXLEN, order key ("": none). Returns 1 done, 0 changed meanwhile, -1 gone.
var replayScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return -1 end
if cur ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[5] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'event', ARGV[3], 'key', ARGV[5])
else
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'event', ARGV[3])
end
return 1
`)
