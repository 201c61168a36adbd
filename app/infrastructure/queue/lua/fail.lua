-- Record a failed attempt in one step, by its ending: a retry (queued again, or scheduled after
-- its backoff), a requeue (not run to an end, say a cold shutdown: no retry used), or a final
-- failure (failed registry and result; `stopped` for a stopped job).
-- Returns the job's new status, or '' when the execution is no longer ours (applied, or reaped).
local id, queue, ending = A.job_id, A.queue, A.ending
local key = K.job(id)
-- An execution the reaper already took back (its worker looked dead) is not ours to record.
if not redis.call('ZSCORE', K.started(queue), id .. ':' .. A.exec_id) then return '' end
end_execution(id, queue, A.exec_id, A.worker_key)
if redis.call('EXISTS', key) == 0 then return '' end

redis.call('HSET', key, F.exc_info, A.error, F.ended_at, A.now_iso)
if ending == E.requeue then
  back_to_queue(MOVE.requeue, id, queue, true, A.now_iso)
  return S.queued
end
if ending == E.retry then
  local left = tonumber(redis.call('HGET', key, F.retries_left)) or 0
  redis.call('HSET', key, F.retries_left, math.max(left - 1, 0))
  if A.retry_at ~= '' then
    MOVE.retry(key, S.scheduled)
    redis.call('ZADD', K.scheduled(queue), A.retry_at, id)
    return S.scheduled
  end
  back_to_queue(MOVE.retry, id, queue, redis.call('HGET', key, F.at_front_on_retry) == '1', A.now_iso)
  return S.queued
end
if ending ~= E.failed and ending ~= E.stopped then error('taskq: unknown ending ' .. tostring(ending)) end
local status = ending == E.stopped and S.stopped or S.failed
local result = ending == E.stopped and RESULT.stopped or RESULT.failed
record_failure(MOVE.fail, id, queue, status, result, tonumber(A.now), A.now_iso, A.error_b64, A.worker)
return status
