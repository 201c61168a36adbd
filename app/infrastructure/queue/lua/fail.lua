-- Record an attempt that did not finish, in one step, by its ending: a retry (queued again, or
-- scheduled retry_in seconds from now), a requeue (not run to an end, say a cold shutdown: no
-- retry used), or a final failure (failed registry and result; `stopped` for a stopped job).
-- Fenced as finish.lua: an execution the reaper already took back is not ours to record.
-- Returns {1, the job's new status} | {0} applied already | {-1} not ours (stale).
local id, queue, ending = A.job_id, A.queue, A.ending
local key = K.job(id)
local refused = end_own_execution(id, queue, A.exec_id, A.worker_key)
if refused then return refused end

local now, now_iso = server_now()
redis.call('HSET', key, F.exc_info, A.error, F.ended_at, now_iso)
if ending == E.requeue then
  back_to_queue(MOVE.requeue, id, queue, true, now_iso)
  return {1, S.queued}
end
if ending == E.snooze then  -- the job asked to run later (RateLimited): no attempt used, no retry spent
  redis.call('HSET', key, F.attempts, math.max((tonumber(redis.call('HGET', key, F.attempts)) or 1) - 1, 0))
  MOVE.snooze(key, S.scheduled)
  redis.call('ZADD', K.scheduled(queue), now + tonumber(A.retry_in ~= '' and A.retry_in or 0), id)
  return {1, S.scheduled}
end
if ending == E.retry then
  local left = tonumber(redis.call('HGET', key, F.retries_left)) or 0
  redis.call('HSET', key, F.retries_left, math.max(left - 1, 0))
  if A.retry_in ~= '' then
    MOVE.retry(key, S.scheduled)
    redis.call('ZADD', K.scheduled(queue), now + tonumber(A.retry_in), id)
    return {1, S.scheduled}
  end
  back_to_queue(MOVE.retry, id, queue, redis.call('HGET', key, F.at_front_on_retry) == '1', now_iso)
  return {1, S.queued}
end
if ending ~= E.failed and ending ~= E.stopped then error('taskq: unknown ending ' .. tostring(ending)) end
local status = ending == E.stopped and S.stopped or S.failed
local result = ending == E.stopped and RESULT.stopped or RESULT.failed
record_failure(MOVE.fail, id, queue, status, result, now, now_iso, A.error_b64, A.worker)
prune_failed(queue, A.max_failed)
return {1, status}
