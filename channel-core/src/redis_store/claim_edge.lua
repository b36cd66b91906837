-- claim_expired_edge: hands one expired edge to exactly one caller. The edge moves from the
-- live leases to the reaping set with a deadline; if that reaper dies before forget_edge, the
-- deadline passes and another caller claims the edge again, so no dead edge is left unreaped.
-- KEYS: 1 leases (zset edge -> expiry ms), 2 reaping (zset edge -> reaper deadline ms),
--       3 provisional leases (set)
-- ARGV: 1 how long a claim lasts, ms
-- Returns the edge, or nil when no lease has expired.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1)
if #due == 0 then
  due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
  if #due == 0 then
    return false
  end
  redis.call('ZREM', KEYS[1], due[1])
  redis.call('SREM', KEYS[3], due[1])
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), due[1])
return due[1]
