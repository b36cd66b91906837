-- user_connect: records a signed-in connection.
-- KEYS: 1 the user's connections, 2 the user's sockets on this edge, 3 this edge's holdings,
--       4-6 outbox
-- ARGV: 1 conn, 2 socket, 3 holding, 4 user
-- Returns 1 when the user now has exactly one connection (the memory store's rule).
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
if redis.call('SCARD', KEYS[1]) == 1 then
  if added == 1 then
    emit(KEYS[4], KEYS[5], KEYS[6], {t = 'online', u = ARGV[4]})
  end
  return 1
end
return 0
