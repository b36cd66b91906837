-- leave: removes one presence connection.
-- KEYS: 1 members, 2 join order, 3 connections (conn -> user), 4 connections per user,
--       5 this edge's sockets, 6 counts (edge -> count), 7 this edge's holdings,
--       8 membership sequence number, 9-11 outbox
-- ARGV: 1 conn, 2 socket, 3 edge, 4 holding, 5 channel
-- Returns nil when the connection was not a member, else {user, 1 | 0 (last connection),
-- sequence number}. The number outlives the last member by an hour, so a channel that fills
-- again keeps counting up.
local user = redis.call('HGET', KEYS[3], ARGV[1])
if not user then
  return false
end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[2])

local last = 0
if redis.call('HINCRBY', KEYS[4], user, -1) <= 0 then
  redis.call('HDEL', KEYS[4], user)
  redis.call('HDEL', KEYS[1], user)
  redis.call('ZREM', KEYS[2], user)
  last = 1
end
local seq = tonumber(redis.call('GET', KEYS[8]) or 0) + last
if last == 1 then
  emit(KEYS[9], KEYS[10], KEYS[11], {t = 'member_removed', ch = ARGV[5], u = user, s = seq})
end
if last == 1 then
  redis.call('SET', KEYS[8], seq)
end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('PEXPIRE', KEYS[8], 3600000)
end

if redis.call('SCARD', KEYS[5]) == 0 and redis.call('HEXISTS', KEYS[6], ARGV[3]) == 0 then
  redis.call('SREM', KEYS[7], ARGV[4])
end
return {user, last, seq}
