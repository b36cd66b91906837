-- join: adds one presence connection.
-- KEYS: 1 members (user -> user_info), 2 join order (zset user -> sequence),
--       3 connections (conn -> user), 4 connections per user, 5 this edge's sockets,
--       6 this edge's holdings, 7 membership sequence number, 8-10 outbox
-- ARGV: 1 conn, 2 socket, 3 user, 4 user_info, 5 max members, 6 holding, 7 channel
-- Returns {1 | 0 (first connection of the user) | -1 (full), {user, info, user, info, ...},
-- sequence number}.
local prev = redis.call('HGET', KEYS[3], ARGV[1])
local first = 0
if prev ~= ARGV[3] then
  if redis.call('HEXISTS', KEYS[1], ARGV[3]) == 0 then
    if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then
      return {-1, {}, 0}
    end
    -- The newest member holds the highest score, so the next one follows it.
    local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
    local seq = 0
    if newest[2] then
      seq = tonumber(newest[2]) + 1
    end
    redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
    redis.call('ZADD', KEYS[2], seq, ARGV[3])
    local mseq = redis.call('INCR', KEYS[7])
    -- Kept while the channel has members; an hour after the last one leaves, it goes.
    redis.call('PERSIST', KEYS[7])
    emit(KEYS[8], KEYS[9], KEYS[10],
      {t = 'member_added', ch = ARGV[7], u = ARGV[3], i = ARGV[4], x = ARGV[2], s = mseq})
    first = 1
  end
  -- A socket is one connection: joining again under another user id moves it.
  if prev and redis.call('HINCRBY', KEYS[4], prev, -1) <= 0 then
    redis.call('HDEL', KEYS[4], prev)
    redis.call('HDEL', KEYS[1], prev)
    redis.call('ZREM', KEYS[2], prev)
    local mseq = redis.call('INCR', KEYS[7])
    emit(KEYS[8], KEYS[9], KEYS[10], {t = 'member_removed', ch = ARGV[7], u = prev, s = mseq})
  end
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
  redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
  redis.call('SADD', KEYS[5], ARGV[2])
  redis.call('SADD', KEYS[6], ARGV[6])
end

local members = {}
for _, user in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  members[#members + 1] = user
  members[#members + 1] = redis.call('HGET', KEYS[1], user)
end
return {first, members, tonumber(redis.call('GET', KEYS[7]) or 0)}
