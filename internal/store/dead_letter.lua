#!lua
-- Records one dead letter exactly once (see store.go for KEYS/ARGV).
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  return 0
end
redis.call('INCR', KEYS[2])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
redis.call('XADD', KEYS[4], '*', 'reason', ARGV[2], 'event', ARGV[3])
return 1
