-- Stats (changes nothing): the queue's counts by status and priority, its length and its oldest request.
-- KEYS: queue, counts, finished
-- ARGV: request key prefix
-- Returns { counts (HGETALL), queue length, oldest QUEUED created_at or '', now, finished in the last hour }.
local now = now_ms()
local oldest = nil
-- FIFO within a band means each band's head is its oldest request.
for priority = 0, MAX_PRIORITY do
  local low, high = band(priority)
  local head = redis.call('ZRANGEBYSCORE', KEYS[1], low, high, 'LIMIT', 0, 1)
  if head[1] then
    local created = tonumber(redis.call('HGET', ARGV[1] .. head[1], 'created_at'))
    if created and (oldest == nil or created < oldest) then oldest = created end
  end
end
return {
  redis.call('HGETALL', KEYS[2]),
  redis.call('ZCARD', KEYS[1]),
  oldest and int(oldest) or '',
  int(now),
  redis.call('ZCOUNT', KEYS[3], now - HOUR_MS, '+inf'),
}
