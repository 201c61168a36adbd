-- The core helpers, prepended to every script; lib_jobs.lua and lib_worker.lua add the rest.
-- Every key, status and field is a schema name (schema.py), expanded when the script is built.
-- Keys follow rq 2.12's data model, so `rq info`, rq-dashboard and rq's Job and Registry read them.

-- Redis's clock as (epoch seconds, rq timestamp `2026-11-28T20:00:00.123456Z`). Every script
-- takes the time here, never from a client: a worker or producer whose clock is off cannot
-- make a job due early, reap a live job, or keep a dead one. Civil date from days since the
-- epoch: H. Hinnant's `civil_from_days`.
local function server_now()
  local t = redis.call('TIME')
  local floor = math.floor  -- a local: 13 table lookups fewer on every script's clock
  local secs, usec = tonumber(t[1]), tonumber(t[2])
  local days = floor(secs / 86400)
  local rem = secs - days * 86400
  local z = days + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local day = doy - floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return secs + usec / 1000000, string.format('%04d-%02d-%02dT%02d:%02d:%02d.%06dZ', year, month, day,
    floor(rem / 3600), floor(rem % 3600 / 60), rem % 60, usec)
end

-- One wake-up token for the idle workers blocked on a queue's token list (bounded).
local function wake(queue)
  if redis.call('RPUSH', K.wake(queue), '1') > 1000 then
    redis.call('LTRIM', K.wake(queue), -1000, -1)
  end
end

-- A key of a queue takes its turns again (its group has jobs, no limit holds it back). Callers
-- know the key is out of the ring (its group was empty, or it was held back), so no scan.
local function ring_in(queue, key)
  redis.call('RPUSH', K.ring(queue), key)
  wake(queue)
end

-- Push a job's id on its queue (at the front for a job put back), or, for a job with a limit key,
-- on its key's group (the key joins the queue's ring if its group was empty); and a wake-up token.
local function push_job(queue, id, at_front, key)
  if key and key ~= '' then
    if redis.call(at_front and 'LPUSH' or 'RPUSH', K.group(queue .. ':' .. key), id) == 1 then
      redis.call('SADD', K.groups(queue), key)
      redis.call('RPUSH', K.ring(queue), key)
    end
  else
    redis.call(at_front and 'LPUSH' or 'RPUSH', K.queue(queue), id)
  end
  wake(queue)
end

-- The one way back into a queue: `move` is the transition's status writer (MOVE.<transition>).
local function back_to_queue(move, id, queue, at_front, now_iso)
  move(K.job(id), S.queued, F.enqueued_at, now_iso)
  push_job(queue, id, at_front, redis.call('HGET', K.job(id), F.limit_key))
end

-- Remove what is left of a job that ended for good, so that its id can start a new run.
local function clear_ended(id)
  local key = K.job(id)
  local origin = redis.call('HGET', key, F.origin)
  if origin then
    redis.call('ZREM', K.failed(origin), id)
    redis.call('ZREM', K.canceled(origin), id)
  end
  redis.call('DEL', key, K.results(id), K.dependencies(id))
end

-- When a new job (a record read by `read_job`) is due: its run_at, or run_in seconds from now;
-- nil when it is due now.
local function due_at(job, now)
  if job.run_in ~= '' then return now + tonumber(job.run_in) end
  if job.run_at ~= '' then return tonumber(job.run_at) end
  return nil
end

-- Write a new job: where it waits first (its queue, or the scheduled or deferred registry),
-- then its hash (created and enqueued now, by Redis's clock), so that a key of the wrong type
-- fails the call before the job exists (an id left alone in a list is dropped by the next claim).
-- `pending` lists the unfinished jobs it waits for.
local function create_job(job, status, now, now_iso, pending)
  local key = K.job(job.job_id)
  if status == S.deferred then
    redis.call('ZADD', K.deferred(job.queue), now, job.job_id)
    for _, dep in ipairs(pending) do
      redis.call('SADD', K.dependents(dep), job.job_id)
      redis.call('SADD', K.dependencies(job.job_id), dep)
    end
  elseif status == S.scheduled then
    redis.call('ZADD', K.scheduled(job.queue), due_at(job, now), job.job_id)
  else
    push_job(job.queue, job.job_id, false, job.limit_key)
  end
  MOVE.create(key, status, F.created_at, now_iso, F.enqueued_at, now_iso, unpack(job.fields))
  if #job.deps > 0 then
    redis.call('HSET', key, F.dependency_id, job.deps[1], F.dependency_ids, cjson.encode(job.deps))
  end
  if job.ttl ~= '' then redis.call('EXPIRE', key, job.ttl) end
end

-- Keep a finished or failed job's keys for `ttl` seconds, and its entry in `registry` (scored by
-- its expiry) as long. rq's -1 means forever; any other value under 1 (written by hand) keeps it
-- a minute, never deletes it on the spot as EXPIRE would.
local function keep_for(key, results, registry, id, now, ttl)
  ttl = tonumber(ttl)
  if ttl == -1 then
    redis.call('PERSIST', key)
    if results then redis.call('PERSIST', results) end
    if registry then redis.call('ZADD', registry, '+inf', id) end
    return
  end
  if not ttl or ttl < 1 then ttl = 60 end
  redis.call('EXPIRE', key, math.floor(ttl))
  if results then redis.call('EXPIRE', results, math.floor(ttl)) end
  if registry then redis.call('ZADD', registry, now + ttl, id) end
end
