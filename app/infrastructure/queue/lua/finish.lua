-- Record a job's success in one step: status, result, finished registry, expiry, the end of its
-- execution, the release of dependents that can now run, and its workflow's count. With claim_next = '1' it claims
-- the next job in the same call, so a busy worker needs one round trip per job.
-- Fenced: only the execution the job is registered under (its started-registry entry) may finish
-- it. A call repeated after a lost reply finds its own finish applied; a worker that lost the job
-- to the reaper (it was frozen, or cut off, past its heartbeat deadline) writes nothing.
-- Returns {1 recorded | 0 applied already | -1 not ours (stale), claim reply...}.
local id, queue = A.job_id, A.queue
local key = K.job(id)
local now, now_iso = server_now()
local done = -1
if redis.call('ZREM', K.started(queue), id .. ':' .. A.exec_id) == 1 then
  release_slots(key, id .. ':' .. A.exec_id)
  local ttl = tonumber(A.result_ttl)
  MOVE.finish(key, S.finished, F.ended_at, now_iso, F.last_heartbeat, now_iso)
  local result = {RF.type, RESULT.successful, RF.worker_name, A.worker}
  if A.return_value ~= '' then
    result[5] = RF.return_value
    result[6] = A.return_value
  end
  redis.call('XADD', K.results(id), 'MAXLEN', '~', '10', '*', unpack(result))
  keep_for(key, K.results(id), K.finished(queue), id, now, ttl)
  if redis.call('EXISTS', K.dependents(id)) == 1 then
    release_dependents(id, now_iso, A.return_value)
    keep_for(K.dependents(id), nil, nil, id, now, ttl)
  end
  -- A workflow's member: counted, its result kept for the callbacks, which are released if it was
  -- the last (one HGET for any other job).
  if redis.call('HGET', K.wf_index, id) then wf_job_ended(id, S.finished, A.return_value, now, now_iso) end
  if A.has_dependencies == '1' then keep_for(K.dependencies(id), nil, nil, id, now, ttl) end
  done = 1
elseif redis.call('HGET', key, F.execution) == A.exec_id and redis.call('HGET', key, F.status) == S.finished then
  done = 0
end
if A.claim_next == '1' then
  return {done, unpack(claim({worker_key = A.worker_key, now = now, now_iso = now_iso, worker = A.worker,
    exec_id = A.next_exec_id, heartbeat_ttl = A.heartbeat_ttl, worker_ttl = A.worker_ttl, promote = A.promote,
    limits = A.limits, queues = A.queues}))}
end
if A.worker_key ~= '' then redis.call('HDEL', A.worker_key, W.current_job) end
return {done}
