-- Cancel a job that has not started: out of its queue or registry, into the canceled registry.
-- Its deferred dependents are canceled with it.
-- ARGV[1] id, ARGV[2] now epoch, ARGV[3] now (rq format).
-- Returns {1} when canceled, {0, status} when it is past canceling, {-1} when there is no job.
local id, now, now_iso = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local key = job_key(id)
local status = redis.call('HGET', key, 'status')
if not status then return {-1} end
if status ~= 'queued' and status ~= 'scheduled' and status ~= 'deferred' then
  return {0, status}
end
local queue = redis.call('HGET', key, 'origin')
redis.call('LREM', 'rq:queue:' .. queue, 0, id)
redis.call('ZREM', 'rq:scheduled:' .. queue, id)
redis.call('ZREM', 'rq:deferred:' .. queue, id)
redis.call('ZADD', 'rq:canceled:' .. queue, now, id)
redis.call('HSET', key, 'status', 'canceled', 'ended_at', now_iso)
local ttl = tonumber(redis.call('HGET', key, 'failure_ttl'))
if ttl then redis.call('EXPIRE', key, ttl) end
cancel_dependents(id, now, now_iso)
return {1}
