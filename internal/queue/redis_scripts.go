package queue

import "github.com/redis/go-redis/v9"

// The scripts settle a stream entry only if it is still pending (XACK returns 1): when a
// slow consumer and the one that claimed its entry both finish, the second finds nothing
// to settle and does not schedule a duplicate retry or count twice. All keys share the
// stream's hash slot, so the scripts run on Redis Cluster too. Each also drops the event's
// lease (the lease key: the event's, or its order key's) if this consumer's entry still
// holds it (the lease value).
//
// An event with an order key is also in its key's queue, from Publish until it is
// acknowledged or dead: a sorted set of event IDs by publish sequence (<stream>:keyq:<key>),
// with where each one is now (<stream>:keyat:<key>: its stream entry ID, or "r" and the due
// time of its retry). takeKeyLease lets only the queue's head run. The settle scripts take
// the key's queue and place (KEYS), the event ID and its order key ("": none) last in ARGV.

// KEYS: stream, stats, lease, key queue, key places. ARGV: group, entry id, lease value,
// event id, order key.
var ackScript = redis.NewScript(`
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('HINCRBY', KEYS[2], 'processed', 1)
  if ARGV[5] ~= '' then
    redis.call('ZREM', KEYS[4], ARGV[4])
    redis.call('HDEL', KEYS[5], ARGV[4])
  end
  return 1
end
return 0
`)

// KEYS: stream, retry zset, stats, lease, key places. ARGV: group, entry id, due (unix ms),
// event JSON, failed (1 counts a failure), lease value, event id, order key. The event stays
// in its key's queue, its place now the retry.
var retryScript = redis.NewScript(`
if redis.call('GET', KEYS[4]) == ARGV[6] then redis.call('DEL', KEYS[4]) end
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  if ARGV[5] == '1' then
    redis.call('HINCRBY', KEYS[3], 'failures', 1)
  end
  if ARGV[8] ~= '' and redis.call('HEXISTS', KEYS[5], ARGV[7]) == 1 then
    redis.call('HSET', KEYS[5], ARGV[7], 'r' .. ARGV[3])
  end
  return 1
end
return 0
`)

// KEYS: stream, dead hash, dead order zset, stats, lease, key queue, key places. ARGV:
// group, entry id, event id, event JSON, died at (unix ms), lease value, order key.
var buryScript = redis.NewScript(`
if redis.call('GET', KEYS[5]) == ARGV[6] then redis.call('DEL', KEYS[5]) end
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
  redis.call('HINCRBY', KEYS[4], 'failures', 1)
  if ARGV[7] ~= '' then
    redis.call('ZREM', KEYS[6], ARGV[3])
    redis.call('HDEL', KEYS[7], ARGV[3])
  end
  return 1
end
return 0
`)

// Moves due retries back to the stream in due order, noting the new entry as the place of
// an event in its key's queue (the order key the event carries: Redis.retry stores it).
// KEYS: retry zset, stream. ARGV: now (unix ms), batch size, stream MAXLEN, the key places'
// prefix (<stream>:keyat:, in the stream's hash slot).
var moveDueScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, e in ipairs(due) do
  local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'event', e)
  redis.call('ZREM', KEYS[1], e)
  local ok, ev = pcall(cjson.decode, e)
  if ok and type(ev) == 'table' and type(ev.key) == 'string' and ev.key ~= '' and type(ev.id) == 'string' then
    local at = ARGV[4] .. ev.key
    if redis.call('HEXISTS', at, ev.id) == 1 then redis.call('HSET', at, ev.id, id) end
  end
end
return #due
`)

// Replays a dead event if it is unchanged since it was read (the Go side rewrites the
// JSON); a keyed one joins the end of its key's queue. KEYS: dead hash, dead order zset,
// stream, publish sequence, key queue, key places. ARGV: event id, old JSON, new JSON,
// stream MAXLEN, order key ("": none). Returns 1 done, 0 changed meanwhile, -1 gone.
var replayScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return -1 end
if cur ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'event', ARGV[3])
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[5], redis.call('INCR', KEYS[4]), ARGV[1])
  redis.call('HSET', KEYS[6], ARGV[1], id)
end
return 1
`)
