-- claim_expired_edge: takes one expired lease off the list. Finding and removing it in one
-- script is what hands each expired edge to exactly one caller.
-- KEYS: 1 leases (zset edge -> expiry ms)
-- Returns the edge, or nil when no lease has expired.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
if #due == 0 then
  return false
end
redis.call('ZREM', KEYS[1], due[1])
return due[1]
