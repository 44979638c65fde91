-- Expire leases: every PROCESSING request whose lease ran out goes back to QUEUED, or to FAILED after
-- max_attempts.
-- KEYS: queue, leases, counts, finished
-- ARGV: request key prefix, max_attempts, retention_s
-- Returns id, outcome pairs for every lease that had run out.
return expire_leases(ARGV[1], KEYS[1], KEYS[2], KEYS[3], KEYS[4], now_ms(), tonumber(ARGV[2]), tonumber(ARGV[3]))
