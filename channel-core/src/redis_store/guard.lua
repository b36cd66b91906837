-- guard: the start of every script that adds to what an edge holds. It refuses an edge that a
-- reaper fenced out of this app, and sends an edge this app has not registered (its first
-- write here, or Redis lost its keys) to register first, so that the edge's apps index, which
-- the reaper reads, names every app the edge holds anything in.
-- Its KEYS and ARGV come last, after the script's own: KEYS the app's fenced edges (zset),
-- the app's registered edges (hash); ARGV the edge, then '0' (check), '1' (the edge has just
-- registered: record it) or '-' (the write only removes: let it through).
do
  local fenced, registered = KEYS[#KEYS - 1], KEYS[#KEYS]
  local edge, mode = ARGV[#ARGV - 1], ARGV[#ARGV]
  if mode ~= '-' then
    if redis.call('ZSCORE', fenced, edge) then
      return redis.error_reply('FENCED edge ' .. edge .. ' was reaped')
    end
    if mode == '1' then
      redis.call('HSET', registered, edge, 1)
    elseif redis.call('HEXISTS', registered, edge) == 0 then
      return redis.error_reply('UNREGISTERED edge ' .. edge)
    end
  end
end
