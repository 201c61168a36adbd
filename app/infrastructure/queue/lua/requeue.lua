-- Put a failed (or stopped) job back in its queue the way our workers take jobs: status
-- `queued`, out of the failed registry, its id and a wake-up token pushed, and a fresh run's
-- budget: attempts back to 0, retries back to the job's own maximum, a hand-back grace anew.
-- Its past results stay in its results stream; dependents already canceled stay canceled.
-- With `data` (taskq failed requeue --as), the job's call is replaced by the renamed one, if the
-- stored call is still the one that was read (`expect_data`).
-- Returns {1, queue}, or {0, status} when the job is not failed or stopped (or its data changed
-- meanwhile), or {-1} when there is no job.
local id = A.job_id
local key = K.job(id)
local status = redis.call('HGET', key, F.status)
if not status then return {-1} end
if not CAN.resubmit(status) then return {0, status} end
if A.data ~= '' then
  if redis.call('HGET', key, F.data) ~= A.expect_data then return {0, 'changed meanwhile'} end
  redis.call('HSET', key, F.data, A.data, F.description, A.description)
  if A.sig ~= '' then redis.call('HSET', key, F.signature, A.sig) else redis.call('HDEL', key, F.signature) end
end
local queue = redis.call('HGET', key, F.origin)
-- A corrupt list gives no retries rather than a script error: the job still goes back.
local ok, intervals = pcall(cjson.decode, redis.call('HGET', key, F.retry_intervals) or '[]')
local retries = (ok and type(intervals) == 'table') and math.min(#intervals, 100) or 0
redis.call('ZREM', K.failed(queue), id)
redis.call('HDEL', key, F.exc_info, F.ended_at, F.reason, F.unknown_since)
redis.call('HSET', key, F.retries_left, retries, F.attempts, 0)
-- A failed job expires with its failure TTL; a queued one lives until it runs (or its own ttl).
local ttl = tonumber(redis.call('HGET', key, F.ttl))
if ttl then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
local _, now_iso = server_now()
back_to_queue(MOVE.resubmit, id, queue, false, now_iso)
return {1, queue}
