-- register_edge: records that an edge is about to hold something in an app, unless a reaper
-- has claimed the edge or already reaped it. One script with the lease lists, so a reaper
-- that claims the edge after this reads an apps index that names the app.
-- KEYS: 1 reaping (zset), 2 dead (zset), 3 the edge's apps index (set)
-- ARGV: 1 edge, 2 app id
-- Returns 1 when registered, 0 when the edge is fenced.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return 0
end
redis.call('SADD', KEYS[3], ARGV[2])
return 1
