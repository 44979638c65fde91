-- Admit a call (the admission gate, functions/request-api/gate.ts), deduplication first: a repeat of a call
-- inside the dedup window gets the first call's answer and does not count towards the rate limit; a new call
-- is admitted (and claims the dedup key) only if fewer than `limit` were admitted in the last window_ms.
-- KEYS: dedup key, rate window (sorted set of admitted call times)
-- ARGV: fresh answer (JSON; '' for a call with nothing to deduplicate), dedup window_s, limit, window_ms,
--       member (unique per call)
-- Returns { 'DUPLICATE', answer } | { 'FIRST', answer } | { 'LIMITED', ms until a slot frees }.
local remember = ARGV[1] ~= ''
if remember then
  local existing = redis.call('GET', KEYS[1])
  if existing then
    return { 'DUPLICATE', existing }
  end
end
local now = now_ms()
local window = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return { 'LIMITED', int(math.max(1, tonumber(oldest[2]) + window - now)) }
end
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('PEXPIRE', KEYS[2], window)
if remember then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return { 'FIRST', ARGV[1] }
