-- Shared helpers, prepended to every script. Keys follow rq 2.12's data model exactly,
-- so `rq info`, rq-dashboard and rq's own Job/Registry classes read what we write.

local function job_key(id) return 'rq:job:' .. id end

local function push_job(queue, id, at_front)
  if at_front then
    redis.call('LPUSH', 'rq:queue:' .. queue, id)
  else
    redis.call('RPUSH', 'rq:queue:' .. queue, id)
  end
  redis.call('SADD', 'rq:queues', 'rq:queue:' .. queue)
  -- One wake-up token per pushed job; idle workers block on these lists.
  redis.call('RPUSH', 'taskq:wake:' .. queue, '1')
  redis.call('LTRIM', 'taskq:wake:' .. queue, -1000, -1)
end

local function end_execution(id, queue, exec_id, worker_key)
  redis.call('DEL', 'rq:execution:' .. id .. ':' .. exec_id)
  redis.call('ZREM', 'rq:wip:' .. queue, id .. ':' .. exec_id)
  redis.call('ZREM', 'rq:executions:' .. id, exec_id)
  if worker_key ~= '' then
    redis.call('HDEL', worker_key, 'current_job')
    redis.call('HSET', worker_key, 'state', 'idle', 'current_job_working_time', 0)
  end
end

-- Enqueue every deferred dependent of `id` whose other dependencies are all finished.
-- A dependency whose hash has expired finished long ago (rq treats it as met too).
local function release_dependents(id, now_iso)
  for _, dep in ipairs(redis.call('SMEMBERS', 'rq:job:' .. id .. ':dependents')) do
    local dkey = job_key(dep)
    if redis.call('HGET', dkey, 'status') == 'deferred' then
      local ready = true
      for _, parent in ipairs(redis.call('SMEMBERS', dkey .. ':dependencies')) do
        if parent ~= id then
          local st = redis.call('HGET', job_key(parent), 'status')
          if st and st ~= 'finished' then ready = false break end
        end
      end
      if ready then
        local origin = redis.call('HGET', dkey, 'origin')
        redis.call('ZREM', 'rq:deferred:' .. origin, dep)
        redis.call('HSET', dkey, 'status', 'queued', 'enqueued_at', now_iso)
        push_job(origin, dep, redis.call('HGET', dkey, 'enqueue_at_front') == '1')
      end
    end
  end
end

-- A job that can never succeed takes its deferred dependents (and theirs) with it: they end
-- `canceled`, never stuck as `deferred` forever.
local function cancel_dependents(id, now, now_iso)
  local stack = {id}
  local seen = 0
  while #stack > 0 and seen < 10000 do
    local current = table.remove(stack)
    for _, dep in ipairs(redis.call('SMEMBERS', 'rq:job:' .. current .. ':dependents')) do
      local dkey = job_key(dep)
      if redis.call('HGET', dkey, 'status') == 'deferred' then
        local origin = redis.call('HGET', dkey, 'origin')
        redis.call('ZREM', 'rq:deferred:' .. origin, dep)
        redis.call('ZADD', 'rq:canceled:' .. origin, now, dep)
        redis.call('HSET', dkey, 'status', 'canceled', 'ended_at', now_iso,
          'taskq_reason', 'dependency ' .. current .. ' did not finish')
        table.insert(stack, dep)
        seen = seen + 1
      end
    end
  end
end

-- Record a final failure: status, failed registry, a FAILED (2) or STOPPED (3) result, expiry.
local function record_failure(id, queue, status, result_type, now, now_iso, exc_b64, worker, exec_id,
                              started_ts)
  local key = job_key(id)
  local ttl = tonumber(redis.call('HGET', key, 'failure_ttl')) or 604800
  redis.call('HSET', key, 'status', status, 'ended_at', now_iso)
  redis.call('ZADD', 'rq:failed:' .. queue, now + ttl, id)
  redis.call('XADD', 'rq:results:' .. id, 'MAXLEN', '10', '*', 'type', result_type, 'worker_name', worker,
    'exc_string', exc_b64, 'execution_id', exec_id, 'execution_started_at', started_ts,
    'execution_ended_at', tostring(now))
  redis.call('EXPIRE', 'rq:results:' .. id, ttl)
  redis.call('EXPIRE', key, ttl)
  cancel_dependents(id, now, now_iso)
end
