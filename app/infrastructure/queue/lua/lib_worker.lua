-- Worker-side functions (claim), prepended to the worker's scripts after the prelude.

-- Move due scheduled jobs into their queues (bounded per call).
local function promote_due(queues, now, now_iso)
  for _, queue in ipairs(queues) do
    local skey = K.scheduled(queue)
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', skey, '-inf', now, 'LIMIT', 0, 100)) do
      redis.call('ZREM', skey, id)
      local key = K.job(id)
      if CAN.promote(redis.call('HGET', key, F.status)) then
        back_to_queue(MOVE.promote, id, queue, redis.call('HGET', key, F.at_front) == '1', now_iso)
      end
    end
  end
end

-- Nothing to run: every wake-up token of these queues is stale; the worker is idle until the
-- next due scheduled job: in how many seconds (by Redis's clock) is returned.
local function go_idle(c, skipped)
  local next_due = false
  for _, queue in ipairs(c.queues) do
    if redis.call('TYPE', K.wake(queue)).ok == 'list' then redis.call('DEL', K.wake(queue)) end
    local ok, first = pcall(redis.call, 'ZRANGE', K.scheduled(queue), 0, 0, 'WITHSCORES')
    if ok and first[2] and (not next_due or tonumber(first[2]) < next_due) then
      next_due = tonumber(first[2])
    end
  end
  redis.call('HDEL', c.worker_key, W.current_job)
  redis.call('HSET', c.worker_key, W.state, WS.idle, W.last_heartbeat, c.now_iso)
  redis.call('EXPIRE', c.worker_key, c.worker_ttl)
  return {'', next_due and tostring(math.max(0, next_due - c.now)) or '', unpack(skipped)}
end

-- Whether `key` is of `kind` (or absent): checked before a script writes to it, so that a key
-- of the wrong type (written by anyone) makes the script skip it instead of failing halfway.
local function writable(key, kind)
  local found = redis.call('TYPE', key).ok
  return found == 'none' or found == kind
end

-- The job's fields a worker needs (schema.CLAIM_FIELDS, a bounded read), as name, value pairs;
-- its status and attempts. nil when the key is not a job hash: there is nothing to run.
local function claim_fields(key)
  local names = LIST.claim_fields
  local ok, values = pcall(redis.call, 'HMGET', key, unpack(names))
  if not ok then return nil end
  local fields = {}
  for i, name in ipairs(names) do
    if values[i] then
      fields[#fields + 1] = name
      fields[#fields + 1] = values[i]
    end
  end
  return fields, values[1], tonumber(values[2]) or 0, values[3]
end

-- Claim the next job for a worker, atomically: pop the first queued job in priority order and
-- register it as started in rq's started registry, in one step. There is no moment at which a
-- job is out of its queue but in no registry (rq's multi-queue BLPOP leaves one: rq#1716), so a
-- worker that dies at any point leaves its job where the reaper finds it. The claim's execution
-- id is written into the job: every later write for it is fenced by that id.
-- `c` holds the claim arguments (schema.CLAIM_ARGS), `now`/`now_iso` (Redis's clock) and
-- `queues`, highest priority first. A queue whose keys have the wrong type is skipped and named.
-- Returns {queue, id, attempts, fields...}, {'', seconds_to_next_due_or_empty, skipped...} or
-- {'suspended'}.
local function claim(c)
  if redis.call('EXISTS', K.suspended) == 1 then
    redis.call('HSET', c.worker_key, W.state, WS.suspended)  -- `rq suspend`: shown, not hidden as idle
    return {'suspended'}
  end
  if c.promote == '1' then promote_due(c.queues, c.now, c.now_iso) end
  local skipped = {}
  for _, queue in ipairs(c.queues) do
    if not (writable(K.queue(queue), 'list') and writable(K.started(queue), 'zset')) then
      skipped[#skipped + 1] = queue
    else
      for _ = 1, 100 do
        local id = redis.call('LPOP', K.queue(queue))
        if not id then break end
        local key = K.job(id)
        local fields, status, attempts, ttl = claim_fields(key)
        -- Only a queued job runs: an id pushed twice (rq#1701) or a job canceled, finished or
        -- already running elsewhere is dropped here instead of running again.
        if fields and CAN.claim(status) then
          attempts = attempts + 1
          MOVE.claim(key, S.started, F.started_at, c.now_iso, F.last_heartbeat, c.now_iso, F.worker_name,
            c.worker, F.attempts, attempts, F.execution, c.exec_id)
          if ttl then redis.call('PERSIST', key) end
          -- Scored by minus its heartbeat deadline (schema.KEYS['started']): rq's cleanup never takes it.
          redis.call('ZADD', K.started(queue), -(c.now + tonumber(c.heartbeat_ttl)), id .. ':' .. c.exec_id)
          redis.call('HSET', c.worker_key, W.current_job, id, W.state, WS.busy)
          if writable(K.wake(queue), 'list') then redis.call('LPOP', K.wake(queue)) end
          return {queue, id, attempts, unpack(fields)}
        end
      end
    end
  end
  return go_idle(c, skipped)
end
