-- Create a batch of jobs atomically, all or nothing (enqueue_one.lua is the one-job fast path).
-- A job whose id belongs to a live job is not created again: that is the idempotency key,
-- checked where no other client can interleave. A job may depend on an earlier one of the batch.
-- Returns {'ok', created (1|0), status, ...} per job in order, or, when a dependency is missing
-- or can never succeed, {'dependency', job index, dependency id, its status or ''} and writes nothing.
local now, now_iso = server_now()
local alive = {}
for index, job in ipairs(A.jobs) do
  job.old = redis.call('HGET', K.job(job.job_id), F.status)
  job.live = IN.live(job.old) or alive[job.job_id] ~= nil
  if not job.live then
    job.pending = {}
    for _, dep in ipairs(job.deps) do
      local st = alive[dep] or redis.call('HGET', K.job(dep), F.status)
      if not st then return {'dependency', index, dep, ''} end
      if IN.doomed(st) then return {'dependency', index, dep, st} end
      if st ~= S.finished then job.pending[#job.pending + 1] = dep end
    end
    if #job.pending > 0 then job.status = S.deferred
    elseif due_at(job, now) then job.status = S.scheduled
    else job.status = S.queued end
    alive[job.job_id] = job.status
  end
end

local reply = {'ok'}
for _, job in ipairs(A.jobs) do
  if job.live then
    -- written back unchanged, so that a WAIT after this call covers a job an earlier call wrote
    if job.old then redis.call('HSET', K.job(job.job_id), F.status, job.old) end
    reply[#reply + 1] = 0
    reply[#reply + 1] = job.old or alive[job.job_id]
  else
    if job.old then clear_ended(job.job_id) end
    redis.call('SADD', K.queues, K.queue(job.queue))
    create_job(job, job.status, now, now_iso, job.pending)
    reply[#reply + 1] = 1
    reply[#reply + 1] = job.status
  end
end
return reply
