-- Restore a running request that Redis lost (a failover or restart without its data): the record says it is
-- PROCESSING under lease_id, so it counts towards the cap again and its workflow's reports renew the lease.
-- KEYS: request, seq, counts, leases
-- ARGV: id, session_id, input_uri, priority, params_json, attempts, lease_id, lease_ms, created_ms, started_ms
-- Returns 1, or 0 when Redis has the request already (it is left as it is).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local now = now_ms()
local priority = tonumber(ARGV[4])
local expires = now + tonumber(ARGV[8])
redis.call('HSET', KEYS[1],
  'id', ARGV[1], 'session_id', ARGV[2], 'input_uri', ARGV[3], 'priority', priority,
  'params', ARGV[5], 'status', 'PROCESSING', 'attempts', tonumber(ARGV[6]), 'seq', redis.call('INCR', KEYS[2]),
  'created_at', ARGV[9], 'updated_at', now, 'started_at', ARGV[10],
  'lease_id', ARGV[7], 'lease_expires_at', expires, 'lease_ms', ARGV[8])
redis.call('ZADD', KEYS[4], expires, ARGV[1])
count(KEYS[3], 'PROCESSING', priority, 1)
return 1
