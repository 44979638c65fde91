-- Resize a lease: a PROCESSING request's lease (and every renewal after it) gets a new length, for the holder
-- of the lease only. The dispatcher takes a request under a short lease and lengthens it to a whole
-- workflow's once the execution exists.
-- KEYS: request, leases
-- ARGV: id, lease_id, lease_ms
-- Returns { 'OK', lease_expires_at } or { reason, current_status }.
local key = KEYS[1]
local fields, refusal = held(key, ARGV[2])
if not fields then
  return refusal
end
local expires = now_ms() + tonumber(ARGV[3])
redis.call('HSET', key, 'lease_ms', ARGV[3], 'lease_expires_at', expires)
redis.call('ZADD', KEYS[2], expires, ARGV[1])
return { 'OK', int(expires) }
