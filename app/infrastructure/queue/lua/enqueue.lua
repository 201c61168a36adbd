-- Create a batch of jobs atomically (a single enqueue is a batch of one), all or nothing.
-- A job whose id belongs to a live job (queued, scheduled, deferred, started, finished) is not
-- created again: that is the idempotency key, checked where no other client can interleave.
-- ARGV[1] now epoch, ARGV[2] number of jobs; then, per job: id, queue, run_at epoch ('' = now),
-- ttl ('' = none), n dependencies, their ids, n hash fields * 2, field/value pairs (rq's format).
-- Returns {'ok', created (1|0), status, ...} per job in order, or, when a dependency is missing
-- or can never succeed, {'dependency', job index, dependency id, its status or ''} and writes nothing.
local now = ARGV[1]
local jobs = {}
local alive = {}
local pos = 3
for index = 1, tonumber(ARGV[2]) do
  local job = {id = ARGV[pos], queue = ARGV[pos + 1], run_at = ARGV[pos + 2], ttl = ARGV[pos + 3]}
  local ndeps = tonumber(ARGV[pos + 4])
  job.deps = {}
  for i = 1, ndeps do job.deps[i] = ARGV[pos + 4 + i] end
  pos = pos + 5 + ndeps
  local nfields = tonumber(ARGV[pos])
  job.fields = {}
  for i = 1, nfields do job.fields[i] = ARGV[pos + i] end
  pos = pos + 1 + nfields
  job.old = redis.call('HGET', job_key(job.id), 'status')
  job.live = job.old and job.old ~= 'failed' and job.old ~= 'stopped' and job.old ~= 'canceled'
  job.live = job.live or alive[job.id] ~= nil
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
  local key = job_key(job.id)
  if job.live then
    reply[#reply + 1] = 0
    reply[#reply + 1] = job.old or alive[job.id]
  else
    if job.old then
      -- A job that ended for good (failed, stopped, canceled) is replaced by a new run.
      local origin = redis.call('HGET', key, 'origin')
      if origin then
        redis.call('ZREM', 'rq:failed:' .. origin, job.id)
        redis.call('ZREM', 'rq:canceled:' .. origin, job.id)
      end
      redis.call('DEL', key, 'rq:results:' .. job.id, key .. ':dependencies')
    end
    redis.call('HSET', key, 'status', job.status, unpack(job.fields))
    redis.call('SADD', 'rq:queues', 'rq:queue:' .. job.queue)
    if job.status == 'deferred' then
      redis.call('ZADD', 'rq:deferred:' .. job.queue, now, job.id)
      for _, dep in ipairs(job.pending) do
        redis.call('SADD', 'rq:job:' .. dep .. ':dependents', job.id)
        redis.call('SADD', key .. ':dependencies', dep)
      end
    elseif job.status == 'scheduled' then
      redis.call('ZADD', 'rq:scheduled:' .. job.queue, job.run_at, job.id)
    else
      push_job(job.queue, job.id, false)
    end
    if job.ttl ~= '' then redis.call('EXPIRE', key, job.ttl) end
    reply[#reply + 1] = 1
    reply[#reply + 1] = job.status
  end
end
return reply
