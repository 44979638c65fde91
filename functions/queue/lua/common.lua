-- Shared by every queue script (prepended, after functions/redis/lua/prelude.lua, when the scripts are loaded).
-- Priorities are integers 0..9, higher first. The queue is one sorted set whose score puts
-- priority first and arrival order (a sequence number) second; both fit a double exactly.
local MAX_PRIORITY = 9
local SEQ_SPAN = 17592186044416 -- 2^44 arrivals per priority band

local function queue_score(priority, seq)
  return int((MAX_PRIORITY - priority) * SEQ_SPAN + seq)
end

local function band(priority)
  local low = (MAX_PRIORITY - priority) * SEQ_SPAN
  return int(low), int(low + SEQ_SPAN - 1)
end

-- Counters per status, and per status within a priority, kept in one hash.
local function count(counts_key, status, priority, delta)
  redis.call('HINCRBY', counts_key, status, delta)
  redis.call('HINCRBY', counts_key, status .. ':' .. priority, delta)
end

local function move(counts_key, from, to, priority)
  if from ~= to then
    count(counts_key, from, priority, -1)
    count(counts_key, to, priority, 1)
  end
end

local HOUR_MS = 3600000

-- A request reaches a terminal status: its lease ends, it counts towards throughput, and its
-- record is kept for the retention period only (Firestore keeps the durable record).
local function finish(key, id, leases_key, finished_key, now, retention_s)
  redis.call('ZREM', leases_key, id)
  redis.call('HDEL', key, 'lease_id', 'lease_expires_at', 'lease_ms')
  redis.call('HSET', key, 'finished_at', now)
  redis.call('ZADD', finished_key, now, id)
  redis.call('ZREMRANGEBYSCORE', finished_key, '-inf', now - HOUR_MS)
  redis.call('EXPIRE', key, retention_s)
end

-- A PROCESSING request goes back to its original place in the queue, its lease ended.
local function requeue(key, id, queue_key, leases_key, now, priority, seq, error_json)
  redis.call('ZREM', leases_key, id)
  redis.call('HDEL', key, 'lease_id', 'lease_expires_at', 'lease_ms')
  redis.call('HSET', key, 'status', 'QUEUED', 'updated_at', now, 'error', error_json)
  redis.call('ZADD', queue_key, queue_score(priority, seq), id)
end

-- Leases that ran out: back to QUEUED at their original place, or FAILED once the request has
-- had max_attempts. Bounded per call so a backlog cannot make one script run long.
local function expire_leases(prefix, queue_key, leases_key, counts_key, finished_key, now, max_attempts, retention_s)
  local expired = {}
  local ids = redis.call('ZRANGEBYSCORE', leases_key, '-inf', now, 'LIMIT', 0, 100)
  for _, id in ipairs(ids) do
    local key = prefix .. id
    local fields = redis.call('HMGET', key, 'status', 'attempts', 'priority', 'seq')
    if fields[1] ~= 'PROCESSING' then
      redis.call('ZREM', leases_key, id)
    else
      local attempts = tonumber(fields[2])
      local priority = tonumber(fields[3])
      local outcome
      if attempts >= max_attempts then
        outcome = 'FAILED'
        redis.call('HSET', key, 'status', 'FAILED', 'updated_at', now, 'error', cjson.encode({
          code = 'LEASE_EXPIRED',
          message = 'the worker stopped reporting; lease expired on attempt ' .. attempts .. ' of ' .. max_attempts,
        }))
        finish(key, id, leases_key, finished_key, now, retention_s)
      else
        outcome = 'QUEUED'
        requeue(key, id, queue_key, leases_key, now, priority, tonumber(fields[4]), cjson.encode({
          code = 'LEASE_EXPIRED',
          message = 'the worker stopped reporting; lease expired on attempt ' .. attempts .. ' of ' .. max_attempts .. ', re-queued',
        }))
      end
      move(counts_key, 'PROCESSING', outcome, priority)
      table.insert(expired, id)
      table.insert(expired, outcome)
    end
  end
  return expired
end

-- The named fields of a PROCESSING request whose lease `lease_id` holds, or nil and the refusal
-- to return ({ reason, current_status }).
local function held(key, lease_id, ...)
  local fields = redis.call('HMGET', key, 'status', 'lease_id', ...)
  if not fields[1] then
    return nil, { 'NOT_FOUND', '' }
  end
  if fields[1] ~= 'PROCESSING' then
    return nil, { 'ILLEGAL_TRANSITION', fields[1] }
  end
  if fields[2] ~= lease_id then
    return nil, { 'LEASE_MISMATCH', fields[1] }
  end
  return fields
end
