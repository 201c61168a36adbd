-- Worker-side functions (claim, finish), prepended to the worker's scripts after the prelude.

-- The server's clock as (epoch seconds, rq timestamp `2026-11-28T20:00:00.123456Z`), for a claim
-- queued behind a blocking pop: the client's clock at sending time may be a second old by then.
-- Civil date from days since the epoch: H. Hinnant's `civil_from_days`.
local function server_now()
  local t = redis.call('TIME')
  local secs, usec = tonumber(t[1]), tonumber(t[2])
  local days = math.floor(secs / 86400)
  local rem = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return secs + usec / 1000000, string.format('%04d-%02d-%02dT%02d:%02d:%02d.%06dZ', year, month, day,
    math.floor(rem / 3600), math.floor(rem % 3600 / 60), rem % 60, usec)
end

-- Move due scheduled jobs into their queues (bounded per call).
local function promote_due(queues, now, now_iso)
  for _, queue in ipairs(queues) do
    local skey = 'rq:scheduled:' .. queue
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', skey, '-inf', now, 'LIMIT', 0, 100)) do
      redis.call('ZREM', skey, id)
      local key = job_key(id)
      if redis.call('HGET', key, 'status') == 'scheduled' then
        redis.call('HSET', key, 'status', 'queued', 'enqueued_at', now_iso)
        push_job(queue, id, redis.call('HGET', key, 'enqueue_at_front') == '1')
      end
    end
  end
end

-- Claim the next job for a worker, atomically: pop the first queued job in priority order and
-- register it as started in rq's started registry, in one step. There is no moment at which a
-- job is out of its queue but in no registry (rq's multi-queue BLPOP leaves one: rq#1716), so a
-- worker that dies at any point leaves its job where the reaper finds it.
-- `c` holds worker_key, now, now_iso, worker, exec_id, hb_ttl, worker_ttl, promote, queues.
-- Returns {queue, id, attempts, hash...}, {'', next_due_epoch_or_empty} or {'suspended'}.
local function claim(c)
  if redis.call('EXISTS', 'rq:suspended') == 1 then
    return {'suspended'}
  end
  if c.promote then promote_due(c.queues, c.now, c.now_iso) end
  for _, queue in ipairs(c.queues) do
    for _ = 1, 100 do
      local id = redis.call('LPOP', 'rq:queue:' .. queue)
      if not id then break end
      local key = job_key(id)
      local fields = redis.call('HGETALL', key)
      local status, attempts, ttl = nil, 0, false
      for i = 1, #fields, 2 do
        local name = fields[i]
        if name == 'status' then status = fields[i + 1]
        elseif name == 'taskq_attempts' then attempts = tonumber(fields[i + 1]) or 0
        elseif name == 'ttl' then ttl = true end
      end
      -- Only a queued job runs: an id pushed twice (rq#1701) or a job canceled, finished or
      -- already running elsewhere is dropped here instead of running again.
      if status == 'queued' then
        attempts = attempts + 1
        redis.call('HSET', key, 'status', 'started', 'started_at', c.now_iso, 'last_heartbeat', c.now_iso,
          'worker_name', c.worker, 'taskq_attempts', attempts)
        if ttl then redis.call('PERSIST', key) end
        redis.call('ZADD', 'rq:wip:' .. queue, c.now + c.hb_ttl, id .. ':' .. c.exec_id)
        redis.call('HSET', c.worker_key, 'current_job', id, 'state', 'busy')
        redis.call('LPOP', 'taskq:wake:' .. queue)
        return {queue, id, attempts, unpack(fields)}
      end
    end
  end
  -- Nothing to run: every wake-up token of these queues is stale.
  local next_due = false
  for _, queue in ipairs(c.queues) do
    redis.call('DEL', 'taskq:wake:' .. queue)
    local first = redis.call('ZRANGE', 'rq:scheduled:' .. queue, 0, 0, 'WITHSCORES')
    if first[2] and (not next_due or tonumber(first[2]) < next_due) then
      next_due = tonumber(first[2])
    end
  end
  redis.call('HDEL', c.worker_key, 'current_job')
  redis.call('HSET', c.worker_key, 'state', 'idle', 'last_heartbeat', c.now_iso)
  redis.call('EXPIRE', c.worker_key, c.worker_ttl)
  return {'', next_due and tostring(next_due) or ''}
end

-- Read claim arguments from `args` starting at `pos` (see dequeue.lua).
local function claim_args(worker_key, args, pos)
  local c = {worker_key = worker_key, now = tonumber(args[pos]), now_iso = args[pos + 1], worker = args[pos + 2],
    exec_id = args[pos + 3], hb_ttl = tonumber(args[pos + 4]), worker_ttl = tonumber(args[pos + 5]),
    promote = args[pos + 6] == '1', queues = {}}
  for i = 1, tonumber(args[pos + 7]) do c.queues[i] = args[pos + 7 + i] end
  if args[pos] == '' then c.now, c.now_iso = server_now() end
  return c
end
