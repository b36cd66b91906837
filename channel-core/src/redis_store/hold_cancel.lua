-- hold_cancel: the channel or member came back.
-- KEYS: 1 the app's held jobs, 2 their due times
-- ARGV: 1 key
-- Returns 1 when a hold was pending (and is now dropped).
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])
