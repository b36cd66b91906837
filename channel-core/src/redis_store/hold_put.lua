-- hold_put: holds a leaving webhook until its time, replacing an older hold of the same key
-- (the new one starts unclaimed).
-- KEYS: 1 the app's held jobs (HASH key → job), 2 their due times (ZSET key → ms, Redis clock),
--       3 the claimed ones (HASH key → 1)
-- ARGV: 1 key, 2 job, 3 hold in ms
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
