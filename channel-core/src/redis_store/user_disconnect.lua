-- user_disconnect: forgets a signed-in connection.
-- KEYS: 1 the user's connections, 2 the user's sockets on this edge, 3 this edge's holdings
-- ARGV: 1 conn, 2 socket, 3 holding
-- Returns 1 when this removed the user's last connection.
local removed = redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[3], ARGV[3])
end
if removed == 1 and redis.call('SCARD', KEYS[1]) == 0 then
  return 1
end
return 0
