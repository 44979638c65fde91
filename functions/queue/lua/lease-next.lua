-- Lease the next request: QUEUED -> PROCESSING for the highest-priority, oldest request, under a new lease.
-- Expires stale leases first, and takes nothing while max_processing requests are PROCESSING already
-- (so concurrent callers never exceed it).
-- KEYS: queue, leases, counts, finished
-- ARGV: request key prefix, lease_ms, lease_id, max_attempts, retention_s, max_processing ('' = no cap)
-- Returns { expired (id, outcome pairs), request fields (HGETALL) or empty }.
local now = now_ms()
local prefix = ARGV[1]
local expired = expire_leases(prefix, KEYS[1], KEYS[2], KEYS[3], KEYS[4], now, tonumber(ARGV[4]), tonumber(ARGV[5]))
if ARGV[6] ~= '' and tonumber(redis.call('HGET', KEYS[3], 'PROCESSING') or '0') >= tonumber(ARGV[6]) then
  return { expired, {} }
end
while true do
  local popped = redis.call('ZPOPMIN', KEYS[1])
  if #popped == 0 then
    return { expired, {} }
  end
  local id = popped[1]
  local key = prefix .. id
  local priority = redis.call('HGET', key, 'priority')
  -- A queue entry without its record cannot be served; dropping it is the only sane choice.
  if priority then
    local expires = now + tonumber(ARGV[2])
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'status', 'PROCESSING', 'started_at', now, 'updated_at', now,
      'lease_id', ARGV[3], 'lease_expires_at', expires, 'lease_ms', ARGV[2])
    redis.call('ZADD', KEYS[2], expires, id)
    move(KEYS[3], 'QUEUED', 'PROCESSING', priority)
    return { expired, redis.call('HGETALL', key) }
  end
end
