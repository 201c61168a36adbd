-- Record a failed attempt in one step: either a retry (queued again, or scheduled after its
-- backoff) or a final failure (failed registry and result; `stopped` for a stopped job).
-- KEYS[1] worker hash ('' for none).
-- ARGV[1] id, ARGV[2] queue, ARGV[3] execution id, ARGV[4] now epoch, ARGV[5] now (rq format),
-- ARGV[6] worker name, ARGV[7] outcome: 'retry' | 'requeue' | 'failed' | 'stopped',
-- ARGV[8] retry at epoch ('' = now), ARGV[9] error text (zlib), ARGV[10] error (base64 zlib),
-- ARGV[11] started epoch, ARGV[12] seconds worked.
-- Returns the job's new status, or '' when the execution is no longer ours (applied, or reaped).
local id, queue, exec_id = ARGV[1], ARGV[2], ARGV[3]
local now, now_iso, worker, outcome = tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7]
local key = job_key(id)
-- An execution the reaper already took back (its worker looked dead) is not ours to record.
if not redis.call('ZSCORE', 'rq:wip:' .. queue, id .. ':' .. exec_id) then
  return ''
end
if redis.call('EXISTS', key) == 0 then
  end_execution(id, queue, exec_id, KEYS[1])
  return ''
end

redis.call('HSET', key, 'exc_info', ARGV[9], 'ended_at', now_iso)
local status
if outcome == 'requeue' then
  -- Not the job's fault (its worker was shut down cold): back to the front, no retry used.
  status = 'queued'
  redis.call('HSET', key, 'status', status, 'enqueued_at', now_iso)
  push_job(queue, id, true)
elseif outcome == 'retry' then
  local left = tonumber(redis.call('HGET', key, 'retries_left')) or 0
  redis.call('HSET', key, 'retries_left', math.max(left - 1, 0))
  if ARGV[8] ~= '' then
    status = 'scheduled'
    redis.call('HSET', key, 'status', status)
    redis.call('ZADD', 'rq:scheduled:' .. queue, ARGV[8], id)
  else
    status = 'queued'
    redis.call('HSET', key, 'status', status, 'enqueued_at', now_iso)
    push_job(queue, id, redis.call('HGET', key, 'enqueue_at_front_on_retry') == '1')
  end
else
  status = outcome
  record_failure(id, queue, outcome, outcome == 'stopped' and '3' or '2', now, now_iso, ARGV[10], worker,
    exec_id, ARGV[11])
end

end_execution(id, queue, exec_id, KEYS[1])
if KEYS[1] ~= '' and outcome ~= 'requeue' then
  redis.call('HINCRBY', KEYS[1], 'failed_job_count', 1)
  redis.call('HINCRBYFLOAT', KEYS[1], 'total_working_time', ARGV[12])
end
return status
