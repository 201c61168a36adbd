-- The core helpers, prepended to every script; lib_jobs.lua and lib_worker.lua add the rest.
-- Keys follow rq 2.12's data model exactly, so `rq info`, rq-dashboard and rq's own Job and
-- Registry classes read what we write.

local function job_key(id) return 'rq:job:' .. id end

local function push_job(queue, id, at_front)
  if at_front then
    redis.call('LPUSH', 'rq:queue:' .. queue, id)
  else
    redis.call('RPUSH', 'rq:queue:' .. queue, id)
  end
  -- One wake-up token per pushed job; idle workers block on these lists.
  if redis.call('RPUSH', 'taskq:wake:' .. queue, '1') > 1000 then
    redis.call('LTRIM', 'taskq:wake:' .. queue, -1000, -1)
  end
end

-- A live job (queued, scheduled, deferred, started, or finished within its result TTL) owns its
-- id: enqueueing that id again returns it. A job that ended for good can be replaced.
local function is_live(status)
  return status and status ~= 'failed' and status ~= 'stopped' and status ~= 'canceled'
end

-- Remove what is left of a job that ended for good, so that its id can start a new run.
local function clear_ended(id)
  local key = job_key(id)
  local origin = redis.call('HGET', key, 'origin')
  if origin then
    redis.call('ZREM', 'rq:failed:' .. origin, id)
    redis.call('ZREM', 'rq:canceled:' .. origin, id)
  end
  redis.call('DEL', key, 'rq:results:' .. id, key .. ':dependencies')
end

