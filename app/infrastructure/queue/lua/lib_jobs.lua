-- Job lifecycle helpers: records, creation, dependencies, failures (all scripts but enqueue_one).

-- Read one job record from `args` at `pos` (the producer's positional format: id, queue, run_at,
-- ttl, stamp, data, description, timeout, result_ttl, failure_ttl, retries_left, retry_intervals,
-- meta, trace, n dependencies, their ids). Returns the job and the position after it.
local function read_job(args, pos)
  local ndeps = tonumber(args[pos + 14])
  local job = {id = args[pos], queue = args[pos + 1], run_at = args[pos + 2], ttl = args[pos + 3], deps = {}}
  for i = 1, ndeps do job.deps[i] = args[pos + 14 + i] end
  local fields = {'created_at', args[pos + 4], 'enqueued_at', args[pos + 4], 'data', args[pos + 5],
    'origin', job.queue, 'description', args[pos + 6], 'timeout', args[pos + 7], 'result_ttl', args[pos + 8],
    'failure_ttl', args[pos + 9], 'retries_left', args[pos + 10], 'retry_intervals', args[pos + 11]}
  if job.ttl ~= '' then
    fields[#fields + 1] = 'ttl'
    fields[#fields + 1] = job.ttl
  end
  if args[pos + 12] ~= '' then
    fields[#fields + 1] = 'meta'
    fields[#fields + 1] = args[pos + 12]
  end
  if args[pos + 13] ~= '' then
    fields[#fields + 1] = 'taskq_trace'
    fields[#fields + 1] = args[pos + 13]
  end
  if ndeps > 0 then
    fields[#fields + 1] = 'dependency_id'
    fields[#fields + 1] = job.deps[1]
    fields[#fields + 1] = 'dependency_ids'
    fields[#fields + 1] = cjson.encode(job.deps)
  end
  job.fields = fields
  return job, pos + 15 + ndeps
end

-- Write a new job: its hash, then its queue, or the scheduled or deferred registry.
-- `pending` lists the unfinished jobs it waits for.
local function create_job(job, status, now, pending)
  local key = job_key(job.id)
  redis.call('HSET', key, 'status', status, unpack(job.fields))
  redis.call('SADD', 'rq:queues', 'rq:queue:' .. job.queue)
  if status == 'deferred' then
    redis.call('ZADD', 'rq:deferred:' .. job.queue, now, job.id)
    for _, dep in ipairs(pending) do
      redis.call('SADD', 'rq:job:' .. dep .. ':dependents', job.id)
      redis.call('SADD', key .. ':dependencies', dep)
    end
  elseif status == 'scheduled' then
    redis.call('ZADD', 'rq:scheduled:' .. job.queue, job.run_at, job.id)
  else
    push_job(job.queue, job.id, false)
  end
  if job.ttl ~= '' then redis.call('EXPIRE', key, job.ttl) end
end

-- The execution ends: out of rq's started registry, and the worker is no longer on it.
local function end_execution(id, queue, exec_id, worker_key)
  redis.call('ZREM', 'rq:wip:' .. queue, id .. ':' .. exec_id)
  if worker_key ~= '' then
    redis.call('HDEL', worker_key, 'current_job')
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
local function record_failure(id, queue, status, result_type, now, now_iso, exc_b64, worker)
  local key = job_key(id)
  local ttl = tonumber(redis.call('HGET', key, 'failure_ttl')) or 604800
  redis.call('HSET', key, 'status', status, 'ended_at', now_iso)
  redis.call('ZADD', 'rq:failed:' .. queue, now + ttl, id)
  redis.call('XADD', 'rq:results:' .. id, 'MAXLEN', '~', '10', '*', 'type', result_type, 'worker_name', worker,
    'exc_string', exc_b64)
  redis.call('EXPIRE', 'rq:results:' .. id, ttl)
  redis.call('EXPIRE', key, ttl)
  cancel_dependents(id, now, now_iso)
end
