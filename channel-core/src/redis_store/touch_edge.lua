-- touch_edge: extends an edge's lease. The expiry comes from the Redis clock, so core
-- replicas with skewed clocks still agree on which leases have expired.
-- KEYS: 1 leases (zset edge -> expiry ms)
-- ARGV: 1 edge, 2 ttl ms
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return now
