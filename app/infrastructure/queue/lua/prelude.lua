-- The core helpers, prepended to every script; lib_jobs.lua and lib_worker.lua add the rest.
-- Every key, status and field is a schema name (schema.py), expanded when the script is built.
-- Keys follow rq 2.12's data model, so `rq info`, rq-dashboard and rq's Job and Registry read them.

-- Push a job's id on its queue (at the front for a job put back), and one wake-up token for the
-- idle workers blocked on that queue's token list.
local function push_job(queue, id, at_front)
  redis.call(at_front and 'LPUSH' or 'RPUSH', K.queue(queue), id)
  if redis.call('RPUSH', K.wake(queue), '1') > 1000 then
    redis.call('LTRIM', K.wake(queue), -1000, -1)
  end
end

-- The one way back into a queue: `move` is the transition's status writer (MOVE.<transition>).
local function back_to_queue(move, id, queue, at_front, now_iso)
  move(K.job(id), S.queued, F.enqueued_at, now_iso)
  push_job(queue, id, at_front)
end

-- Remove what is left of a job that ended for good, so that its id can start a new run.
local function clear_ended(id)
  local key = K.job(id)
  local origin = redis.call('HGET', key, F.origin)
  if origin then
    redis.call('ZREM', K.failed(origin), id)
    redis.call('ZREM', K.canceled(origin), id)
  end
  redis.call('DEL', key, K.results(id), K.dependencies(id))
end

-- Write a new job (a record read by `read_job`): its hash, then its queue, or the scheduled or
-- deferred registry. `pending` lists the unfinished jobs it waits for.
local function create_job(job, status, now, pending)
  local key = K.job(job.job_id)
  MOVE.create(key, status, unpack(job.fields))
  if #job.deps > 0 then
    redis.call('HSET', key, F.dependency_id, job.deps[1], F.dependency_ids, cjson.encode(job.deps))
  end
  if status == S.deferred then
    redis.call('ZADD', K.deferred(job.queue), now, job.job_id)
    for _, dep in ipairs(pending) do
      redis.call('SADD', K.dependents(dep), job.job_id)
      redis.call('SADD', K.dependencies(job.job_id), dep)
    end
  elseif status == S.scheduled then
    redis.call('ZADD', K.scheduled(job.queue), job.run_at, job.job_id)
  else
    push_job(job.queue, job.job_id, false)
  end
  if job.ttl ~= '' then redis.call('EXPIRE', key, job.ttl) end
end
