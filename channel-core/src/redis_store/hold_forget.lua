-- hold_forget: drops a sent hold unless a newer one of the same key replaced it.
-- KEYS: 1 the app's held jobs, 2 their due times, 3 the claimed ones
-- ARGV: 1 key, 2 the job that was sent
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
end
return 1
