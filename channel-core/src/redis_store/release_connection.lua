-- release_connection: counts one connection of an edge fewer.
-- KEYS: 1 the app's connection counts (HASH edge → count)
-- ARGV: 1 edge
-- Returns the edge's remaining count. The field goes at zero, so the hash never holds zeros
-- (the edge's holding stays until it is reaped or forgotten: a superset is fine).
local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if left <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
return left
