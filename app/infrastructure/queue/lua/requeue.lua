-- Put a failed (or stopped) job back in its queue the way our workers take jobs: status
-- `queued`, out of the failed registry, its id and a wake-up token pushed (push_job), and a
-- fresh run's budget: attempts back to 0, retries back to the job's own maximum.
-- Its past results stay in rq:results:<id>; dependents already canceled stay canceled.
-- ARGV[1] id, ARGV[2] now (rq format).
-- Returns {1, queue}, or {0, status} when the job is not failed or stopped, or {-1} when there is no job.
local id, now_iso = ARGV[1], ARGV[2]
local key = job_key(id)
local status = redis.call('HGET', key, 'status')
if not status then return {-1} end
if status ~= 'failed' and status ~= 'stopped' then return {0, status} end
local queue = redis.call('HGET', key, 'origin')
local retries = #cjson.decode(redis.call('HGET', key, 'retry_intervals') or '[]')
redis.call('ZREM', 'rq:failed:' .. queue, id)
redis.call('HDEL', key, 'exc_info', 'ended_at', 'taskq_reason')
redis.call('HSET', key, 'status', 'queued', 'enqueued_at', now_iso, 'retries_left', retries, 'taskq_attempts', 0)
-- A failed job expires with its failure TTL; a queued one lives until it runs (or its own ttl).
local ttl = tonumber(redis.call('HGET', key, 'ttl'))
if ttl then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
push_job(queue, id, false)
return {1, queue}
