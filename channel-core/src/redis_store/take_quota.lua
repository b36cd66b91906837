-- take_quota: takes an amount from a per-second allowance, by the Redis clock so every
-- caller shares one window.
-- KEYS: 1 the bucket (STRING "<unix second> <used>")
-- ARGV: 1 amount, 2 allowance per second
-- Returns 1 when taken, 0 (taking nothing) when it would exceed the allowance.
local now = redis.call('TIME')[1]
local used = 0
local current = redis.call('GET', KEYS[1])
if current then
  local second, n = string.match(current, '^(%d+) (%d+)$')
  if second == now then
    used = tonumber(n)
  end
end
local amount = tonumber(ARGV[1])
if used + amount > tonumber(ARGV[2]) then
  return 0
end
redis.call('SET', KEYS[1], now .. ' ' .. (used + amount), 'PX', 2000)
return 1
