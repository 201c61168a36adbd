-- Record a failed attempt in one step: either a retry (queued again, or scheduled after its
-- backoff), a requeue (the worker shut down cold: no retry used), or a final failure (failed
-- registry and result; `stopped` for a stopped job).
-- KEYS[1] worker hash ('' for none).
-- ARGV[1] id, ARGV[2] queue, ARGV[3] execution id, ARGV[4] now epoch, ARGV[5] now (rq format),
-- ARGV[6] worker name, ARGV[7] outcome: 'retry' | 'requeue' | 'failed' | 'stopped',
-- ARGV[8] retry at epoch ('' = now), ARGV[9] error text (zlib), ARGV[10] error (base64 zlib).
-- Returns the job's new status, or '' when the execution is no longer ours (applied, or reaped).
local id, queue, exec_id = ARGV[1], ARGV[2], ARGV[3]
local now, now_iso, worker, outcome = tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7]
local key = job_key(id)
-- An execution the reaper already took back (its worker looked dead) is not ours to record.
if not redis.call('ZSCORE', 'rq:wip:' .. queue, id .. ':' .. exec_id) then
  return ''
end
end_execution(id, queue, exec_id, KEYS[1])
if redis.call('EXISTS', key) == 0 then
  return ''
end

redis.call('HSET', key, 'exc_info', ARGV[9], 'ended_at', now_iso)
if outcome == 'requeue' then
  redis.call('HSET', key, 'status', 'queued', 'enqueued_at', now_iso)
  push_job(queue, id, true)
  return 'queued'
end
if outcome == 'retry' then
  local left = tonumber(redis.call('HGET', key, 'retries_left')) or 0
  redis.call('HSET', key, 'retries_left', math.max(left - 1, 0))
  if ARGV[8] ~= '' then
    redis.call('HSET', key, 'status', 'scheduled')
    redis.call('ZADD', 'rq:scheduled:' .. queue, ARGV[8], id)
    return 'scheduled'
  end
  redis.call('HSET', key, 'status', 'queued', 'enqueued_at', now_iso)
  push_job(queue, id, redis.call('HGET', key, 'enqueue_at_front_on_retry') == '1')
  return 'queued'
end
record_failure(id, queue, outcome, outcome == 'stopped' and '3' or '2', now, now_iso, ARGV[10], worker)
return outcome
