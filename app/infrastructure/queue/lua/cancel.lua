-- Cancel a job that has not started: out of its queue or registry, into the canceled registry.
-- Its deferred dependents are canceled with it (unless a workflow's edge says to go on), and its
-- workflow, if it is a member of one, counts it.
-- Returns {1} when canceled, {0, status} when it is past canceling, {-1} when there is no job.
local id = A.job_id
local key = K.job(id)
local status = redis.call('HGET', key, F.status)
if not status then return {-1} end
if not CAN.cancel(status) then return {0, status} end
local queue, limit_key = unpack(redis.call('HMGET', key, F.origin, F.limit_key))
local now, now_iso = server_now()
redis.call('LREM', K.queue(queue), 0, id)
if limit_key then redis.call('LREM', K.group(queue .. ':' .. limit_key), 0, id) end
redis.call('ZREM', K.scheduled(queue), id)
redis.call('ZREM', K.deferred(queue), id)
redis.call('ZADD', K.canceled(queue), now, id)
MOVE.cancel(key, S.canceled, F.ended_at, now_iso)
keep_for(key, nil, nil, id, now, redis.call('HGET', key, F.failure_ttl) or 604800)
cancel_dependents(id, now, now_iso, S.canceled)
return {1}
