-- outbox: the start of every script whose change causes something (a broadcast, a webhook). The
-- effect is written in the same atomic step as the change; core's relay carries it out at least
-- once and then forgets it, so nothing that must happen is left to a request a deadline can
-- cancel, or to a core that dies. Each script passes its outbox keys explicitly: the app's
-- effects (HASH id → JSON), their order (ZSET id → creation ms, Redis clock) and its id counter.
-- Ids are the time and a counter, zero-padded, so effects due in the same millisecond are claimed
-- in the order made, and unique even after Redis lost its keys (the counter starts again).
local function emit(fx, fx_due, fx_seq, effect)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local id = string.format('%013d-%016d', now, redis.call('INCR', fx_seq))
  redis.call('HSET', fx, id, cjson.encode(effect))
  redis.call('ZADD', fx_due, now, id)
end
