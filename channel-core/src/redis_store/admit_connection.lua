-- admit_connection: counts one more connection of an edge unless the app is at its maximum.
-- KEYS: 1 the app's connection counts (HASH edge → count), 2 the edge's holdings
-- ARGV: 1 edge, 2 maximum across all edges (0: no limit), 3 holding
-- Returns 1 when admitted, 0 when the app already has the maximum.
local max = tonumber(ARGV[2])
if max > 0 then
  local total = 0
  for _, n in ipairs(redis.call('HVALS', KEYS[1])) do
    total = total + tonumber(n)
  end
  if total >= max then
    return 0
  end
end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[2], ARGV[3])
return 1
