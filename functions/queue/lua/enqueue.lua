-- Enqueue: a new request becomes QUEUED, behind every request of its priority or higher.
-- KEYS: request, queue, seq, counts
-- ARGV: id, session_id, input_uri, priority, params_json
-- Returns the 1-based position in the queue, or an EXISTS error.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('EXISTS request ' .. ARGV[1] .. ' already exists')
end
local now = now_ms()
local priority = tonumber(ARGV[4])
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1],
  'id', ARGV[1], 'session_id', ARGV[2], 'input_uri', ARGV[3], 'priority', priority,
  'params', ARGV[5], 'status', 'QUEUED', 'attempts', 0, 'seq', seq,
  'created_at', now, 'updated_at', now)
redis.call('ZADD', KEYS[2], queue_score(priority, seq), ARGV[1])
count(KEYS[4], 'QUEUED', priority, 1)
return redis.call('ZRANK', KEYS[2], ARGV[1]) + 1
