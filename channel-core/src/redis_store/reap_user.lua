-- reap_user: removes a dead edge's signed-in connections of one user.
-- KEYS: 1 the user's connections, 2 the user's sockets on the edge, 3 the edge's holdings,
--       4-6 outbox
-- ARGV: 1 conn prefix of the edge, 2 holding, 3 user
-- Returns 1 when the edge held the user's last connections.
local had = redis.call('SCARD', KEYS[1])
for _, socket in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('SREM', KEYS[1], ARGV[1] .. socket)
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
if had > 0 and redis.call('SCARD', KEYS[1]) == 0 then
  emit(KEYS[4], KEYS[5], KEYS[6], {t = 'offline', u = ARGV[3]})
  return 1
end
return 0
