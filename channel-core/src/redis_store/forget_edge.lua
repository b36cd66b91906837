-- forget_edge: a reaped edge is done. It leaves the reaping set for the dead set, where it
-- stays an hour (longer than any request of it can be in flight), so it never gets a lease
-- or registers again, and its apps index goes.
-- KEYS: 1 reaping (zset), 2 dead (zset), 3 the edge's apps index (set)
-- ARGV: 1 edge, 2 how long the dead are remembered, ms
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keep = tonumber(ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - keep)
redis.call('PEXPIRE', KEYS[2], keep)
redis.call('DEL', KEYS[3])
return 1
