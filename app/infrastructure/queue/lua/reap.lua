-- Take back executions whose heartbeat expired (their worker died): the job goes back to the
-- front of its queue if it has retries left, else it fails with a clear reason. rq only fails
-- them, after 90 s + up to 10 min, and only retries jobs that had a Retry.
-- ARGV[1] queue, ARGV[2] now epoch, ARGV[3] now (rq format), ARGV[4] error text (zlib),
-- ARGV[5] error (base64 zlib), ARGV[6] max executions to reap.
-- Returns {requeued ids..., '|', failed ids...}.
local queue, now, now_iso = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local wip = 'rq:wip:' .. queue
local requeued, failed = {}, {}
for _, entry in ipairs(redis.call('ZRANGEBYSCORE', wip, '-inf', now, 'LIMIT', 0, tonumber(ARGV[6]))) do
  local sep = string.find(entry, ':', 1, true)
  local id = sep and string.sub(entry, 1, sep - 1) or entry
  local exec_id = sep and string.sub(entry, sep + 1) or ''
  end_execution(id, queue, exec_id, '')
  local key = job_key(id)
  if redis.call('HGET', key, 'status') == 'started' then
    local worker = redis.call('HGET', key, 'worker_name') or ''
    redis.call('HSET', key, 'exc_info', ARGV[4], 'ended_at', now_iso)
    local left = tonumber(redis.call('HGET', key, 'retries_left')) or 0
    if left > 0 then
      redis.call('HSET', key, 'retries_left', left - 1, 'status', 'queued', 'enqueued_at', now_iso)
      push_job(queue, id, true)
      requeued[#requeued + 1] = id
    else
      record_failure(id, queue, 'failed', '2', now, now_iso, ARGV[5], worker)
      failed[#failed + 1] = id
    end
  end
end
requeued[#requeued + 1] = '|'
for _, id in ipairs(failed) do requeued[#requeued + 1] = id end
return requeued
