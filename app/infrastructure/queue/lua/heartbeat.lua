-- A worker's heartbeat, by Redis's clock: its running job's deadline pushed back (only while the
-- job is still registered under this execution: a job the reaper took back is not revived), the
-- worker's hash refreshed, its counters added.
-- Returns {1 | 0 the job is still this execution's ('' without a job), 1 | 0 the worker's hash
-- was there}. A hash that is missing, or was recreated in part by a claim (Redis restarted
-- without persistence), is left for the caller to register again, whole.
local now, now_iso = server_now()
local mine = ''
if A.job_id ~= '' then
  local entry = A.job_id .. ':' .. A.exec_id
  mine = redis.call('ZSCORE', K.started(A.queue), entry) and 1 or 0
  if mine == 1 then
    local deadline = now + tonumber(A.heartbeat_ttl)
    -- Minus the deadline (schema.KEYS['started']): out of rq's cleanup.
    redis.call('ZADD', K.started(A.queue), 'XX', -deadline, entry)
    for slot in string.gmatch(redis.call('HGET', K.job(A.job_id), F.slots) or '', '%S+') do
      redis.call('ZADD', K.slots(slot), 'XX', deadline, entry)  -- a live holder's slot never looks leaked
    end
  end
end
if redis.call('HEXISTS', A.worker_key, W.birth) == 0 then return {mine, 0} end
if A.job_id ~= '' then redis.call('HSET', A.worker_key, W.working_time, A.working_time) end
redis.call('HSET', A.worker_key, W.last_heartbeat, now_iso)
redis.call('EXPIRE', A.worker_key, A.worker_ttl)
redis.call('SADD', K.workers, A.worker_key)
for i = 1, #A.counts, 2 do
  if A.counts[i] == W.total_working_time then
    redis.call('HINCRBYFLOAT', A.worker_key, A.counts[i], A.counts[i + 1])
  else
    redis.call('HINCRBY', A.worker_key, A.counts[i], A.counts[i + 1])
  end
end
return {mine, 1}
