-- register_edge: records that an edge is about to hold something in an app, unless a reaper
-- has claimed the edge or already reaped it. One script with the lease lists, so a reaper
-- that claims the edge after this reads an apps index that names the app. An edge that has no
-- lease yet (a new id whose first heartbeat is still on its way, or Redis lost its keys) gets
-- a provisional one, so what it writes is reaped even if it dies before it beats; its first
-- heartbeat still counts as its first.
-- KEYS: 1 reaping (zset), 2 dead (zset), 3 the edge's apps index (set), 4 live leases (zset),
--       5 provisional leases (set)
-- ARGV: 1 edge, 2 app id, 3 provisional lease in ms
-- Returns 1 when registered, 0 when the edge is fenced.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return 0
end
if not redis.call('ZSCORE', KEYS[4], ARGV[1]) then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[4], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('SADD', KEYS[5], ARGV[1])
end
redis.call('SADD', KEYS[3], ARGV[2])
return 1
