#!lua
-- Stores a group of reports, each exactly once; a report whose id was stored
-- before changes nothing. Nothing else runs while a script runs, but a
-- command that fails does not undo the writes before it: so everything that
-- could fail is checked before the first write, and the shebang makes Redis
-- and Valkey refuse the whole script up front when out of memory.
--
-- KEYS and ARGV, mirrored by saveCall in store.go:
--   KEYS[1..5]  total, country counts, weather counts, recent stream, latency
--   KEYS[6..]   per report: its dedupe marker, then its hash
--   ARGV[1..5]  path, retention s, dedupe window s, recent cap, stored at
--   ARGV[6..]   per report, 7 each: id, country, weather, description,
--               accepted at, latency ms, latency bucket field
local TOTAL, COUNTRIES, WEATHERS, RECENT, LATENCY = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local SHARED_KEYS, KEYS_PER_REPORT = 5, 2
local SHARED_ARGS, ARGS_PER_REPORT = 5, 7
local path, storedAt = ARGV[1], ARGV[5]
local retention, dedupe, recentMax = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

local n = (#ARGV - SHARED_ARGS) / ARGS_PER_REPORT
if n ~= math.floor(n) or #KEYS ~= SHARED_KEYS + KEYS_PER_REPORT * n then
  return redis.error_reply('clima: keys and arguments disagree')
end
if not (retention and dedupe and recentMax) then
  return redis.error_reply('clima: bad numeric argument')
end
for i = 0, n - 1 do
  if not tonumber(ARGV[SHARED_ARGS + ARGS_PER_REPORT * i + 6]) then
    return redis.error_reply('clima: bad numeric argument')
  end
end
local shared = {{TOTAL, 'string'}, {COUNTRIES, 'hash'}, {WEATHERS, 'hash'}, {RECENT, 'stream'}, {LATENCY, 'hash'}}
for _, key in ipairs(shared) do
  local found = redis.call('TYPE', key[1])['ok']
  if found ~= 'none' and found ~= key[2] then
    return redis.error_reply('clima: ' .. key[1] .. ' is a ' .. found .. ', want a ' .. key[2])
  end
end

local stored, latencySum, latencyMax = 0, 0, 0
local perCountry, countryOrder = {}, {}
local perWeather, weatherOrder = {}, {}
local perBucket, bucketOrder = {}, {}
local fresh = {}
local function count(tally, order, name)
  if not tally[name] then
    tally[name] = 0
    order[#order + 1] = name
  end
  tally[name] = tally[name] + 1
end

for i = 0, n - 1 do
  local k = SHARED_KEYS + KEYS_PER_REPORT * i
  local a = SHARED_ARGS + ARGS_PER_REPORT * i
  if redis.call('SET', KEYS[k + 1], '1', 'NX', 'EX', dedupe) then
    local id, country, weather, description = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
    local latency = tonumber(ARGV[a + 6])
    redis.call('HSET', KEYS[k + 2], 'id', id, 'description', description, 'country', country,
      'weather', weather, 'accepted_at', ARGV[a + 5], 'stored_at', storedAt, 'latency_ms', ARGV[a + 6], 'path', path)
    redis.call('EXPIRE', KEYS[k + 2], retention)
    stored = stored + 1
    count(perCountry, countryOrder, country)
    count(perWeather, weatherOrder, weather)
    count(perBucket, bucketOrder, ARGV[a + 7])
    latencySum = latencySum + latency
    if latency > latencyMax then
      latencyMax = latency
    end
    fresh[#fresh + 1] = a
  end
end
if stored == 0 then
  return 0
end

redis.call('INCRBY', TOTAL, stored)
for _, country in ipairs(countryOrder) do
  redis.call('HINCRBY', COUNTRIES, country, perCountry[country])
end
for _, weather in ipairs(weatherOrder) do
  redis.call('HINCRBY', WEATHERS, weather, perWeather[weather])
end
-- The stream keeps about the newest recentMax: older ones would be trimmed.
for j = math.max(1, #fresh - recentMax + 1), #fresh do
  local a = fresh[j]
  redis.call('XADD', RECENT, 'MAXLEN', '~', recentMax, '*', 'id', ARGV[a + 1], 'country', ARGV[a + 2],
    'weather', ARGV[a + 3], 'description', ARGV[a + 4], 'latency_ms', ARGV[a + 6], 'path', path)
end
redis.call('HINCRBY', LATENCY, 'count', stored)
redis.call('HINCRBY', LATENCY, 'sum_ms', latencySum)
for _, bucket in ipairs(bucketOrder) do
  redis.call('HINCRBY', LATENCY, bucket, perBucket[bucket])
end
if latencyMax > tonumber(redis.call('HGET', LATENCY, 'max_ms') or '0') then
  redis.call('HSET', LATENCY, 'max_ms', latencyMax)
end
return stored
