-- Requeue an unstarted request: PROCESSING -> QUEUED at its original place, for a request whose work never
-- started (its workflow execution could not be created), by the holder of its lease only. The attempt counts:
-- a start that keeps failing must end after the most attempts, not be tried forever.
-- KEYS: request, queue, leases, counts
-- ARGV: id, lease_id, error_json
-- Returns { 'OK' } or { reason, current_status }.
local key = KEYS[1]
local fields, refusal = held(key, ARGV[2], 'priority', 'seq')
if not fields then
  return refusal
end
local priority = tonumber(fields[3])
requeue(key, ARGV[1], KEYS[2], KEYS[3], now_ms(), priority, tonumber(fields[4]), ARGV[3])
move(KEYS[4], 'PROCESSING', 'QUEUED', priority)
return { 'OK' }
