-- hold_claim: claims the app's holds that are due, pushing their time back by the claim so
-- other replicas skip them while this one sends them (and retry if it dies).
-- KEYS: 1 the app's held jobs, 2 their due times, 3 the claimed ones
-- ARGV: 1 claim in ms, 2 limit
-- Returns key, job, key, job, …
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keys = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, key in ipairs(keys) do
  local job = redis.call('HGET', KEYS[1], key)
  if job then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), key)
    redis.call('HSET', KEYS[3], key, 1)
    table.insert(out, key)
    table.insert(out, job)
  else
    redis.call('ZREM', KEYS[2], key)
  end
end
return out
