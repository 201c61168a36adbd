-- Hand back a job this worker does not know (its name, or its params version), in one step: not
-- failed and no attempt used (the claim's is given back), scheduled again `retry_in` seconds from
-- now (Redis's clock) for a worker that knows it (the short wait keeps a lone old worker from
-- spinning on it), the time it was first handed back kept (the grace counts from it), and
-- indexed for `taskq info`. Fenced as fail.lua.
-- Returns {1, the job's new status} | {0} applied already | {-1} not ours (stale).
local id, queue = A.job_id, A.queue
local key = K.job(id)
local refused = end_own_execution(id, queue, A.exec_id, A.worker_key)
if refused then return refused end
local now = server_now()

local attempts = math.max((tonumber(redis.call('HGET', key, F.attempts)) or 1) - 1, 0)
redis.call('HSETNX', key, F.unknown_since, string.format('%.6f', now))
MOVE.handback(key, S.scheduled, F.attempts, attempts, F.reason, A.reason)
redis.call('ZADD', K.scheduled(queue), now + tonumber(A.retry_in), id)

-- The index: id -> its attempts now. A job still waits while it is queued or scheduled with as
-- many attempts; one that ran since, ended or expired is dropped here, a few at a time.
local index = K.unknown(queue)
local sample = redis.call('ZRANDMEMBER', index, 10, 'WITHSCORES')
for i = 1, #sample, 2 do
  local other = redis.call('HMGET', K.job(sample[i]), F.status, F.attempts)
  local waiting = (other[1] == S.queued or other[1] == S.scheduled)
  if not waiting or (tonumber(other[2]) or 0) ~= tonumber(sample[i + 1]) then
    redis.call('ZREM', index, sample[i])
  end
end
redis.call('ZADD', index, attempts, id)
redis.call('EXPIRE', index, 7 * 24 * 3600)  -- left by a deploy long over: gone after a week
return {1, S.scheduled}
