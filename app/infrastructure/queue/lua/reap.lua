-- Take back executions whose heartbeat expired (their worker died): the job goes back to the
-- front of its queue if it has retries left, else it fails with a clear reason. rq only fails
-- them, after 90 s + up to 10 min, and only retries jobs that had a Retry.
-- Our executions are scored by minus their deadline (expired: in (-now, 0)); an execution some
-- other worker registered the rq way (a plain rq worker, an older taskq) by its deadline (expired:
-- in [0, now]). Returns {requeued ids..., '|', failed ids...}.
local queue = A.queue
local now, now_iso = server_now()
local requeued, failed = {}, {}
local expired = redis.call('ZRANGEBYSCORE', K.started(queue), '(' .. (-now), now, 'LIMIT', 0, tonumber(A.limit))
for _, entry in ipairs(expired) do
  -- `id:exec_id`: the execution id (hex) has no colon, a scheduled job's id does.
  local id, exec_id = string.match(entry, '^(.*):([^:]*)$')
  id, exec_id = id or entry, exec_id or ''
  end_execution(id, queue, exec_id, '')
  local key = K.job(id)
  if CAN.reap(redis.call('HGET', key, F.status)) then
    local worker = redis.call('HGET', key, F.worker_name) or ''
    -- The execution is no longer the job's: its worker, should it come back, writes nothing.
    redis.call('HDEL', key, F.execution)
    redis.call('HSET', key, F.exc_info, A.error, F.ended_at, now_iso)
    local left = tonumber(redis.call('HGET', key, F.retries_left)) or 0
    if left > 0 then
      redis.call('HSET', key, F.retries_left, left - 1)
      back_to_queue(MOVE.reap, id, queue, true, now_iso)
      requeued[#requeued + 1] = id
    else
      record_failure(MOVE.reap, id, queue, S.failed, RESULT.failed, now, now_iso, A.error_b64, worker)
      failed[#failed + 1] = id
    end
  end
end
if #failed > 0 then prune_failed(queue, A.max_failed) end
requeued[#requeued + 1] = '|'
for _, id in ipairs(failed) do requeued[#requeued + 1] = id end
return requeued
