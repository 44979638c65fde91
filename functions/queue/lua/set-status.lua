-- Set the status: a legal transition (QUEUED -> PROCESSING | CANCELLED; PROCESSING -> PROCESSING (a progress
-- report, renewing the lease) | COMPLETED | FAILED | CANCELLED), with stage, progress, error and outputs. When a
-- lease is expected, only its holder may make it.
-- KEYS: request, queue, leases, counts, finished
-- ARGV: id, status, stage, progress, error_json, outputs_json, default lease_ms, expected_lease_id,
--       new_lease_id, retention_s (empty strings mean "not given")
-- Returns { 'OK', fields (HGETALL) } or { reason, current_status }.
local key = KEYS[1]
local id = ARGV[1]
local target = ARGV[2]
local current = redis.call('HGET', key, 'status')
if not current then
  return { 'NOT_FOUND', '' }
end
local legal = {
  QUEUED = { PROCESSING = true, CANCELLED = true },
  PROCESSING = { PROCESSING = true, COMPLETED = true, FAILED = true, CANCELLED = true },
}
if not (legal[current] and legal[current][target]) then
  return { 'ILLEGAL_TRANSITION', current }
end
-- A worker whose lease was lost (expired, request handed to someone else) must not settle it.
local expected_lease = ARGV[8]
if expected_lease ~= '' and redis.call('HGET', key, 'lease_id') ~= expected_lease then
  return { 'LEASE_MISMATCH', current }
end

local now = now_ms()
local priority = redis.call('HGET', key, 'priority')
redis.call('HSET', key, 'status', target, 'updated_at', now)
if ARGV[3] ~= '' then redis.call('HSET', key, 'stage', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', key, 'progress', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', key, 'error', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', key, 'outputs', ARGV[6]) end

if target == 'PROCESSING' then
  if current == 'QUEUED' then
    redis.call('ZREM', KEYS[2], id)
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'started_at', now, 'lease_id', ARGV[9], 'lease_ms', ARGV[7])
  end
  -- A renewal extends the lease by the length it was taken with.
  local expires = now + tonumber(redis.call('HGET', key, 'lease_ms'))
  redis.call('HSET', key, 'lease_expires_at', expires)
  redis.call('ZADD', KEYS[3], expires, id)
else
  if target == 'CANCELLED' then redis.call('ZREM', KEYS[2], id) end
  finish(key, id, KEYS[3], KEYS[5], now, tonumber(ARGV[10]))
end
move(KEYS[4], current, target, priority)
return { 'OK', redis.call('HGETALL', key) }
