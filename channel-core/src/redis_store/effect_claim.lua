-- effect_claim: claims the app's effects that are due, in the order they were made, pushing
-- their time back by the claim so other replicas skip them while this one carries them out
-- (and take them again if it dies).
-- KEYS: 1 the app's effects (HASH id → JSON), 2 their due times (ZSET id → ms)
-- ARGV: 1 claim in ms, 2 limit
-- Returns id, effect, id, effect, …
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local effect = redis.call('HGET', KEYS[1], id)
  if effect then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), id)
    table.insert(out, id)
    table.insert(out, effect)
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
return out
