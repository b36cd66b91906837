-- hold_cancel: the channel or member came back.
-- KEYS: 1 the app's held jobs, 2 their due times, 3 the claimed ones
-- ARGV: 1 key
-- Returns 1 when a hold was pending (and is now dropped). A claimed hold is being sent: it is
-- left to its sender, and 0 tells the caller to send the return too, so the pair stays whole.
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])
