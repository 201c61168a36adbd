-- Create one job that depends on nothing: the hot path of `enqueue` (enqueue.lua handles
-- batches and dependencies). With an explicit id (check_live = '1'), a live job that already has
-- it is returned instead (idempotency); a generated id (128 random bits) cannot collide, so its
-- check is skipped. The queue joins rq's set of queues on a producer's first job to it.
-- It is create_job's queued-or-scheduled case, written out: every step of Lua counts here (a
-- script that only returns costs Redis 7 us on a 2-core VM). The hash fields arrive as ready
-- pairs (`schema.pack_fields`): no record table is built from the arguments.
-- A retry of a generated id (check_live = '2': the first call's reply was lost, or too few
-- replicas acknowledged it) returns the job in any state: it can only be this call's own.
-- A job found is written back unchanged, so that a WAIT after this call covers it too.
-- Returns {1, status} when created, {0, status} for a live job that already has the id.
local id, queue = A.job_id, A.queue
local key = K.job(id)
if A.check_live ~= '0' then
  local old = redis.call('HGET', key, F.status)
  if IN.live(old) or (old and A.check_live == '2') then
    redis.call('HSET', key, F.status, old)
    return {0, old}
  end
  if old then clear_ended(id) end
end
if A.register == '1' then redis.call('SADD', K.queues, K.queue(queue)) end
local now, now_iso = server_now()
local due = nil
if A.run_in ~= '' then due = now + tonumber(A.run_in) elseif A.run_at ~= '' then due = tonumber(A.run_at) end
local status = S.queued
if due then  -- where it waits first, then its hash, as create_job does
  status = S.scheduled
  redis.call('ZADD', K.scheduled(queue), due, id)
else
  push_job(queue, id, false, A.limit_key)  -- a keyed job waits in its key's group
end
MOVE.create(key, status, F.created_at, now_iso, F.enqueued_at, now_iso, unpack(A.fields))
if A.ttl ~= '' then redis.call('EXPIRE', key, A.ttl) end
return {1, status}
