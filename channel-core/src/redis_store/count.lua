-- set_edge_count: one edge's absolute subscriber count for a channel.
-- KEYS: 1 counts (edge -> count), 2 this edge's presence sockets, 3 occupied index,
--       4 this edge's holdings, 5-7 outbox
-- ARGV: 1 edge, 2 count, 3 channel
-- Returns {total before, total after}.
local function total()
  local sum = 0
  for _, n in ipairs(redis.call('HVALS', KEYS[1])) do
    sum = sum + tonumber(n)
  end
  return sum
end

local before = total()
if tonumber(ARGV[2]) == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
local after = total()

if after > 0 then
  redis.call('ZADD', KEYS[3], 0, ARGV[3])
else
  redis.call('ZREM', KEYS[3], ARGV[3])
end
local holding = 'c' .. ARGV[3]
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('SCARD', KEYS[2]) > 0 then
  redis.call('SADD', KEYS[4], holding)
else
  redis.call('SREM', KEYS[4], holding)
end
if before ~= after then
  emit(KEYS[5], KEYS[6], KEYS[7], {t = 'count', ch = ARGV[3], b = before, a = after})
end
return {before, after}
