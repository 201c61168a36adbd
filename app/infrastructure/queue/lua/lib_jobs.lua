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

-- Enqueue every deferred dependent of `id` whose other dependencies are all finished; a chain's
-- next job gets `value` (the result) as its input if it takes one (`F.wants_input`). A
-- dependency whose hash has expired finished long ago (rq treats it as met too), unless it is a
-- workflow's member not settled yet: then it expired before it ran (`wf_vanished` settles it).
local function release_dependents(id, now_iso, value)
  for _, dep in ipairs(redis.call('SMEMBERS', K.dependents(id))) do
    local dkey = K.job(dep)
    if CAN.release(redis.call('HGET', dkey, F.status)) then
      local ready = true
      for _, parent in ipairs(redis.call('SMEMBERS', K.dependencies(dep))) do
        if parent ~= id then
          local st = redis.call('HGET', K.job(parent), F.status)
          if (st and st ~= S.finished) or (not st and redis.call('HGET', K.wf_index, parent)) then
            ready = false
            break
          end
        end
      end
      if ready then
        local origin, at_front, workflow, ttl = unpack(redis.call('HMGET', dkey, F.origin, F.at_front, F.workflow,
          F.ttl))
        wf_input(dkey, cjson.encode({kind = 'result', value = value ~= '' and value or nil}))
        redis.call('ZREM', K.deferred(origin), dep)
        back_to_queue(MOVE.release, dep, origin, at_front == '1', now_iso)
        if workflow and ttl then redis.call('EXPIRE', dkey, ttl) end  -- a workflow's TTL starts now
      end
    end
  end
end

-- A job that can never succeed (it ended `outcome`: failed, stopped, canceled) takes its deferred
-- dependents (and theirs) with it: they end `canceled`, never stuck as `deferred` forever; a
-- workflow's edge may say to go on instead, and its workflow counts it (`wf_job_ended`).
local function cancel_dependents(id, now, now_iso, outcome)
  wf_job_ended(id, outcome or S.canceled, nil, now, now_iso)
end

-- Record a final failure (`move` is the transition's status writer): status, failed registry,
-- a FAILED or STOPPED result, expiry, and the dependents canceled.
local function record_failure(move, id, queue, status, result_type, now, now_iso, exc_b64, worker)
  local key = K.job(id)
  move(key, status, F.ended_at, now_iso)
  redis.call('XADD', K.results(id), 'MAXLEN', '~', '10', '*', RF.type, result_type, RF.worker_name, worker,
    RF.exc_string, exc_b64)
  keep_for(key, K.results(id), K.failed(queue), id, now, redis.call('HGET', key, F.failure_ttl) or 604800)
  cancel_dependents(id, now, now_iso, status)
end
