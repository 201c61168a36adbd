-- Create one job that depends on nothing: the hot path of `enqueue` (enqueue.lua handles
-- batches and dependencies). With an explicit id (check_live = '1'), a live job that already has
-- it is returned instead (idempotency); a generated id (128 random bits) cannot collide, so its
-- check is skipped. The queue joins rq's set of queues on a producer's first job to it.
-- Returns {1, status} when created, {0, status} for a live job that already has the id.
local job = A.job
if A.check_live == '1' then
  local old = redis.call('HGET', K.job(job.job_id), F.status)
  if IN.live(old) then return {0, old} end
  if old then clear_ended(job.job_id) end
end
if A.register == '1' then redis.call('SADD', K.queues, K.queue(job.queue)) end
local now, now_iso = server_now()
local status = due_at(job, now) and S.scheduled or S.queued
create_job(job, status, now, now_iso, {})
return {1, status}
