-- touch_edge: extends an edge's lease. The expiry comes from the Redis clock, so core
-- replicas with skewed clocks still agree on which leases have expired.
-- KEYS: 1 leases (zset edge -> expiry ms), 2 reaping (zset), 3 dead (zset), 4 provisional (set)
-- ARGV: 1 edge, 2 ttl ms
-- Returns 1 when the edge still had a lease entry, even an expired one: no reaper claimed it, so
-- what it holds is intact (core may merely have been down). 0 when it had none: its first
-- heartbeat, Redis lost its keys, or a reaper claimed it, and the edge must start afresh. A
-- claimed or reaped edge gets no new lease: it is over.
if redis.call('ZSCORE', KEYS[2], ARGV[1]) or redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
-- A provisional lease (see register_edge) was made by a write, not granted to a beat: this is
-- still the edge's first.
if expiry and redis.call('SREM', KEYS[4], ARGV[1]) == 0 then
  return 1
end
return 0
