-- KEYS: request, queue, leases, counts
-- ARGV: id, lease_id, error_json
-- A PROCESSING request whose work never started (its workflow execution could not be created)
-- goes back to its original place in the queue; the attempt does not count.
-- Returns { 'OK' } or { reason, current_status }.
local key = KEYS[1]
local fields = redis.call('HMGET', key, 'status', 'lease_id', 'priority', 'seq')
if not fields[1] then
  return { 'NOT_FOUND', '' }
end
if fields[1] ~= 'PROCESSING' then
  return { 'ILLEGAL_TRANSITION', fields[1] }
end
if fields[2] ~= ARGV[2] then
  return { 'LEASE_MISMATCH', fields[1] }
end
local priority = tonumber(fields[3])
requeue(key, ARGV[1], KEYS[2], KEYS[3], now_ms(), priority, tonumber(fields[4]), ARGV[3])
redis.call('HINCRBY', key, 'attempts', -1)
move(KEYS[4], 'PROCESSING', 'QUEUED', priority)
return { 'OK' }
