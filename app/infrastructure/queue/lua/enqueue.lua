-- Create a batch of jobs atomically, all or nothing (enqueue_one.lua is the one-job fast path).
-- A job whose id belongs to a live job (queued, scheduled, deferred, started, finished) is not
-- created again: that is the idempotency key, checked where no other client can interleave.
-- ARGV[1] now epoch, ARGV[2] number of jobs, then one job record per job (read_job, prelude).
-- Returns {'ok', created (1|0), status, ...} per job in order, or, when a dependency is missing
-- or can never succeed, {'dependency', job index, dependency id, its status or ''} and writes nothing.
local now = ARGV[1]
local jobs = {}
local alive = {}
local pos = 3
for index = 1, tonumber(ARGV[2]) do
  local job
  job, pos = read_job(ARGV, pos)
  job.old = redis.call('HGET', job_key(job.id), 'status')
  job.live = is_live(job.old) or alive[job.id] ~= nil
  if not job.live then
    job.pending = {}
    for _, dep in ipairs(job.deps) do
      local st = alive[dep] or redis.call('HGET', job_key(dep), 'status')
      if not st then return {'dependency', index, dep, ''} end
      if st == 'failed' or st == 'stopped' or st == 'canceled' then return {'dependency', index, dep, st} end
      if st ~= 'finished' then job.pending[#job.pending + 1] = dep end
    end
    if #job.pending > 0 then job.status = 'deferred'
    elseif job.run_at ~= '' then job.status = 'scheduled'
    else job.status = 'queued' end
    alive[job.id] = job.status
  end
  jobs[index] = job
end

local reply = {'ok'}
for _, job in ipairs(jobs) do
  if job.live then
    reply[#reply + 1] = 0
    reply[#reply + 1] = job.old or alive[job.id]
  else
    if job.old then clear_ended(job.id) end
    create_job(job, job.status, now, job.pending)
    reply[#reply + 1] = 1
    reply[#reply + 1] = job.status
  end
end
return reply
