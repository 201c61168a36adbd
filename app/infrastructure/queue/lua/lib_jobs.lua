-- Job lifecycle helpers: the end of an execution, dependencies, final failures.

-- The execution ends: out of rq's started registry, its limit slots freed, and the worker is
-- no longer on it.
local function end_execution(id, queue, exec_id, worker_key)
  redis.call('ZREM', K.started(queue), id .. ':' .. exec_id)
  release_slots(K.job(id), id .. ':' .. exec_id)
  if worker_key ~= '' then redis.call('HDEL', worker_key, W.current_job) end
end

-- The fence of an outcome other than a success: only the execution the job is registered under
-- (its started-registry entry) may record it, and its execution ends here. nil when it was ours;
-- else the script's reply: {0} applied already (a call repeated after a lost reply), {-1} not
-- ours (the reaper gave the job to another worker, or the job is gone).
local function end_own_execution(id, queue, exec_id, worker_key)
  local key = K.job(id)
  if not redis.call('ZSCORE', K.started(queue), id .. ':' .. exec_id) then
    return {redis.call('HGET', key, F.execution) == exec_id and 0 or -1}
  end
  end_execution(id, queue, exec_id, worker_key)
  if redis.call('EXISTS', key) == 0 then return {-1} end
  return nil
end

-- Enqueue every deferred dependent of `id` whose other dependencies are all finished.
-- A dependency whose hash has expired finished long ago (rq treats it as met too).
local function release_dependents(id, now_iso)
  for _, dep in ipairs(redis.call('SMEMBERS', K.dependents(id))) do
    local dkey = K.job(dep)
    if CAN.release(redis.call('HGET', dkey, F.status)) then
      local ready = true
      for _, parent in ipairs(redis.call('SMEMBERS', K.dependencies(dep))) do
        if parent ~= id then
          local st = redis.call('HGET', K.job(parent), F.status)
          if st and st ~= S.finished then ready = false break end
        end
      end
      if ready then
        local origin = redis.call('HGET', dkey, F.origin)
        redis.call('ZREM', K.deferred(origin), dep)
        back_to_queue(MOVE.release, dep, origin, redis.call('HGET', dkey, F.at_front) == '1', now_iso)
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
    for _, dep in ipairs(redis.call('SMEMBERS', K.dependents(current))) do
      local dkey = K.job(dep)
      if CAN.cascade(redis.call('HGET', dkey, F.status)) then
        local origin = redis.call('HGET', dkey, F.origin)
        redis.call('ZREM', K.deferred(origin), dep)
        redis.call('ZADD', K.canceled(origin), now, dep)
        MOVE.cascade(dkey, S.canceled, F.ended_at, now_iso, F.reason, 'dependency ' .. current .. ' did not finish')
        table.insert(stack, dep)
        seen = seen + 1
      end
    end
  end
end

-- Keep a finished or failed job's keys for `ttl` seconds, and its entry in `registry` (scored by
-- its expiry) as long. rq's -1 means forever; any other value under 1 (written by hand) keeps it
-- a minute, never deletes it on the spot as EXPIRE would.
local function keep_for(key, results, registry, id, now, ttl)
  ttl = tonumber(ttl)
  if ttl == -1 then
    redis.call('PERSIST', key)
    if results then redis.call('PERSIST', results) end
    if registry then redis.call('ZADD', registry, '+inf', id) end
    return
  end
  if not ttl or ttl < 1 then ttl = 60 end
  redis.call('EXPIRE', key, math.floor(ttl))
  if results then redis.call('EXPIRE', results, math.floor(ttl)) end
  if registry then redis.call('ZADD', registry, now + ttl, id) end
end

-- Record a final failure (`move` is the transition's status writer): status, failed registry,
-- a FAILED or STOPPED result, expiry, and the dependents canceled.
local function record_failure(move, id, queue, status, result_type, now, now_iso, exc_b64, worker)
  local key = K.job(id)
  move(key, status, F.ended_at, now_iso)
  redis.call('XADD', K.results(id), 'MAXLEN', '~', '10', '*', RF.type, result_type, RF.worker_name, worker,
    RF.exc_string, exc_b64)
  keep_for(key, K.results(id), K.failed(queue), id, now, redis.call('HGET', key, F.failure_ttl) or 604800)
  cancel_dependents(id, now, now_iso)
end
