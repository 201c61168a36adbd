-- Record a job's success in one step: status, result, finished registry, expiry, the end of its
-- execution, and the release of dependents that can now run. With claim_next = '1' it claims
-- the next job in the same call, so a busy worker needs one round trip per job.
-- Returns {1 | 0 (already applied), claim reply...}.
local id, queue = A.job_id, A.queue
local key = K.job(id)
local done = 0
-- Ours if our execution was still registered; else this finish was applied already (a retried
-- call after a lost reply), or the reaper took the job back and it must not run again.
local mine = redis.call('ZREM', K.started(queue), id .. ':' .. A.exec_id) == 1
local status = mine and S.started or redis.call('HGET', key, F.status)
if status and (mine or status ~= S.finished) then
  local ttl = tonumber(A.result_ttl)
  MOVE.finish(key, S.finished, F.ended_at, A.now_iso, F.last_heartbeat, A.now_iso)
  local result = {RF.type, RESULT.successful, RF.worker_name, A.worker}
  if A.return_value ~= '' then
    result[5] = RF.return_value
    result[6] = A.return_value
  end
  redis.call('XADD', K.results(id), 'MAXLEN', '~', '10', '*', unpack(result))
  redis.call('EXPIRE', K.results(id), ttl)
  redis.call('EXPIRE', key, ttl)
  redis.call('ZADD', K.finished(queue), tonumber(A.now) + ttl, id)
  if redis.call('EXISTS', K.dependents(id)) == 1 then
    release_dependents(id, A.now_iso)
    redis.call('EXPIRE', K.dependents(id), ttl)
  end
  if A.has_dependencies == '1' then redis.call('EXPIRE', K.dependencies(id), ttl) end
  done = 1
end
if A.claim_next == '1' then
  return {done, unpack(claim({worker_key = A.worker_key, now = A.now, now_iso = A.now_iso, worker = A.worker,
    exec_id = A.next_exec_id, heartbeat_ttl = A.heartbeat_ttl, worker_ttl = A.worker_ttl, promote = A.promote,
    queues = A.queues}))}
end
if A.worker_key ~= '' then redis.call('HDEL', A.worker_key, W.current_job) end
return {done}
