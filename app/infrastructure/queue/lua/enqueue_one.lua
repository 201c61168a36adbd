-- Create one job that depends on nothing, unless a live job already has its id (idempotency):
-- the hot path of `enqueue`, kept lean (enqueue.lua handles batches and dependencies).
-- ARGV: one job record (see read_job in the prelude), without dependencies.
-- Returns {1, status} when created, {0, status} for a live job that already has the id.
local job = read_job(ARGV, 1)
local old = redis.call('HGET', job_key(job.id), 'status')
if is_live(old) then return {0, old} end
if old then clear_ended(job.id) end
local status = job.run_at ~= '' and 'scheduled' or 'queued'
create_job(job, status, nil, nil)
return {1, status}
