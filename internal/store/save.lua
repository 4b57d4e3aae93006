#!lua
-- Stores a group of reports, each exactly once; a report whose id was stored
-- before changes nothing. Nothing else runs while a script runs, but a
-- command that fails does not undo the writes before it: so everything that
-- could fail is checked before the first write, and the shebang makes Redis
-- and Valkey refuse the whole script up front when out of memory.
--
-- KEYS and ARGV, named: the slots of the shared keys and arguments, then of
-- each report's, whose blocks follow one another. store.go mirrors them in
-- saveKeys, saveArgs and reportArgs (TestScriptSlots holds the two equal).
local K_TOTAL, K_COUNTRIES, K_WEATHERS, K_RECENT, K_LATENCY = 1, 2, 3, 4, 5
local K_SHARED = 5
local K_SEEN, K_HASH = 1, 2
local K_PER_REPORT = 2
local A_PATH, A_RETENTION, A_DEDUPE, A_RECENT_MAX, A_STORED_AT = 1, 2, 3, 4, 5
local A_SHARED = 5
local A_ID, A_COUNTRY, A_WEATHER, A_DESCRIPTION, A_ACCEPTED_AT, A_LATENCY_MS, A_BUCKET = 1, 2, 3, 4, 5, 6, 7
local A_PER_REPORT = 7

local TOTAL, COUNTRIES, WEATHERS, RECENT, LATENCY = KEYS[K_TOTAL], KEYS[K_COUNTRIES], KEYS[K_WEATHERS], KEYS[K_RECENT], KEYS[K_LATENCY]
local path, storedAt = ARGV[A_PATH], ARGV[A_STORED_AT]
local retention, dedupe, recentMax = tonumber(ARGV[A_RETENTION]), tonumber(ARGV[A_DEDUPE]), tonumber(ARGV[A_RECENT_MAX])

local n = (#ARGV - A_SHARED) / A_PER_REPORT
if n ~= math.floor(n) or #KEYS ~= K_SHARED + K_PER_REPORT * n then
  return redis.error_reply('clima: keys and arguments disagree')
end
if not (retention and dedupe and recentMax) then
  return redis.error_reply('clima: bad numeric argument')
end
for i = 0, n - 1 do
  if not tonumber(ARGV[A_SHARED + A_PER_REPORT * i + A_LATENCY_MS]) then
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
  local k = K_SHARED + K_PER_REPORT * i
  local a = A_SHARED + A_PER_REPORT * i
  if redis.call('SET', KEYS[k + K_SEEN], '1', 'NX', 'EX', dedupe) then
    local id, country, weather, description = ARGV[a + A_ID], ARGV[a + A_COUNTRY], ARGV[a + A_WEATHER], ARGV[a + A_DESCRIPTION]
    local latency = tonumber(ARGV[a + A_LATENCY_MS])
    redis.call('HSET', KEYS[k + K_HASH], 'id', id, 'description', description, 'country', country,
      'weather', weather, 'accepted_at', ARGV[a + A_ACCEPTED_AT], 'stored_at', storedAt, 'latency_ms', ARGV[a + A_LATENCY_MS], 'path', path)
    redis.call('EXPIRE', KEYS[k + K_HASH], retention)
    stored = stored + 1
    count(perCountry, countryOrder, country)
    count(perWeather, weatherOrder, weather)
    count(perBucket, bucketOrder, ARGV[a + A_BUCKET])
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
  redis.call('XADD', RECENT, 'MAXLEN', '~', recentMax, '*', 'id', ARGV[a + A_ID], 'country', ARGV[a + A_COUNTRY],
    'weather', ARGV[a + A_WEATHER], 'description', ARGV[a + A_DESCRIPTION], 'latency_ms', ARGV[a + A_LATENCY_MS], 'path', path)
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
