-- KEYS: window (sorted set of admitted call times)
-- ARGV: limit, window_ms, member (unique per call)
-- Sliding window: admits the call if fewer than `limit` were admitted in the last window_ms.
-- Returns 0 when admitted, else the milliseconds until the oldest admitted call leaves the window.
local now = now_ms()
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
