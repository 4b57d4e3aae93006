#!lua
-- Stores one report atomically, exactly once (see store.go for KEYS/ARGV).
-- The shebang makes Redis and Valkey refuse the whole script up front when
-- out of memory, instead of failing half-way through its writes.
local latency = tonumber(ARGV[6])
local retention = tonumber(ARGV[8])
local dedupe = tonumber(ARGV[9])
local recentMax = tonumber(ARGV[10])
if not (latency and retention and dedupe and recentMax) then
  return redis.error_reply('clima: bad numeric argument')
end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', dedupe) then
  return 0
end
local id, country, weather, description = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('HSET', KEYS[2], 'id', id, 'description', description, 'country', country,
  'weather', weather, 'accepted_at', ARGV[5], 'stored_at', ARGV[11], 'latency_ms', ARGV[6], 'path', ARGV[7])
redis.call('EXPIRE', KEYS[2], retention)
redis.call('INCR', KEYS[3])
redis.call('HINCRBY', KEYS[4], country, 1)
redis.call('HINCRBY', KEYS[5], weather, 1)
redis.call('XADD', KEYS[6], 'MAXLEN', '~', recentMax, '*', 'id', id, 'country', country,
  'weather', weather, 'description', description, 'latency_ms', ARGV[6], 'path', ARGV[7])
redis.call('HINCRBY', KEYS[7], 'count', 1)
redis.call('HINCRBY', KEYS[7], 'sum_ms', latency)
redis.call('HINCRBY', KEYS[7], ARGV[12], 1)
local max = tonumber(redis.call('HGET', KEYS[7], 'max_ms') or '0')
if latency > max then
  redis.call('HSET', KEYS[7], 'max_ms', latency)
end
return 1
