-- reap_channel: removes a dead edge's count and presence connections in one channel.
-- KEYS: 1 counts, 2 members, 3 join order, 4 connections (conn -> user),
--       5 connections per user, 6 this edge's sockets, 7 occupied index, 8 this edge's holdings,
--       9 membership sequence number, 10-12 outbox
-- ARGV: 1 edge, 2 channel, 3 conn prefix of the edge, 4 holding
-- Returns {total before, total after, {users whose last connection was on the edge},
-- sequence number after their removals}.
local function total()
  local sum = 0
  for _, n in ipairs(redis.call('HVALS', KEYS[1])) do
    sum = sum + tonumber(n)
  end
  return sum
end

local before = total()
redis.call('HDEL', KEYS[1], ARGV[1])
local after = total()

local left = {}
for _, socket in ipairs(redis.call('SMEMBERS', KEYS[6])) do
  local conn = ARGV[3] .. socket
  local user = redis.call('HGET', KEYS[4], conn)
  if user then
    redis.call('HDEL', KEYS[4], conn)
    if redis.call('HINCRBY', KEYS[5], user, -1) <= 0 then
      redis.call('HDEL', KEYS[5], user)
      redis.call('HDEL', KEYS[2], user)
      redis.call('ZREM', KEYS[3], user)
      left[#left + 1] = user
    end
  end
end
redis.call('DEL', KEYS[6])
local seq = tonumber(redis.call('GET', KEYS[9]) or 0)
for _, user in ipairs(left) do
  seq = seq + 1
  emit(KEYS[10], KEYS[11], KEYS[12], {t = 'member_removed', ch = ARGV[2], u = user, s = seq})
end
if before ~= after then
  emit(KEYS[10], KEYS[11], KEYS[12], {t = 'count', ch = ARGV[2], b = before, a = after})
end
if #left > 0 then
  redis.call('SET', KEYS[9], seq)
end
if redis.call('HLEN', KEYS[2]) == 0 and seq > 0 then
  redis.call('PEXPIRE', KEYS[9], 3600000)
end

if after > 0 then
  redis.call('ZADD', KEYS[7], 0, ARGV[2])
else
  redis.call('ZREM', KEYS[7], ARGV[2])
end
redis.call('SREM', KEYS[8], ARGV[4])
return {before, after, left, seq}
