-- user_disconnect: forgets a signed-in connection.
-- KEYS: 1 the user's connections, 2 the user's sockets on this edge, 3 this edge's holdings,
--       4-6 outbox
-- ARGV: 1 conn, 2 socket, 3 holding, 4 user
-- Returns 1 when this removed the user's last connection.
local removed = redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[3], ARGV[3])
end
if removed == 1 and redis.call('SCARD', KEYS[1]) == 0 then
  emit(KEYS[4], KEYS[5], KEYS[6], {t = 'offline', u = ARGV[4]})
  return 1
end
return 0
