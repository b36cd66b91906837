-- effect_claim: claims the app's next effects, in the order they were made. Effects are carried
-- out one app at a time in that order: an effect still claimed by another relay (or by this
-- one, not yet forgotten) stops the claim there, so no later effect of the app overtakes it.
-- A claim that lapses (its relay died or failed) is taken again, from that effect on.
-- KEYS: 1 the app's effects (HASH id → JSON), 2 their order (ZSET id → creation ms),
--       3 the claimed ones (HASH id → deadline ms)
-- ARGV: 1 claim in ms, 2 limit
-- Returns id, effect, id, effect, …
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1)
local out = {}
for _, id in ipairs(ids) do
  local deadline = redis.call('HGET', KEYS[3], id)
  if deadline and tonumber(deadline) > now then
    break
  end
  local effect = redis.call('HGET', KEYS[1], id)
  if effect then
    redis.call('HSET', KEYS[3], id, now + tonumber(ARGV[1]))
    table.insert(out, id)
    table.insert(out, effect)
  else
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
  end
end
return out
