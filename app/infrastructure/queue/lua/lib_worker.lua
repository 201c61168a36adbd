-- Worker-side functions (claim), prepended to the worker's scripts after the prelude.

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
-- next due scheduled job, whose time is returned.
local function go_idle(c, now_iso)
  local next_due = false
  for _, queue in ipairs(c.queues) do
    redis.call('DEL', K.wake(queue))
    local first = redis.call('ZRANGE', K.scheduled(queue), 0, 0, 'WITHSCORES')
    if first[2] and (not next_due or tonumber(first[2]) < next_due) then
      next_due = tonumber(first[2])
    end
  end
  redis.call('HDEL', c.worker_key, W.current_job)
  redis.call('HSET', c.worker_key, W.state, WS.idle, W.last_heartbeat, now_iso)
  redis.call('EXPIRE', c.worker_key, c.worker_ttl)
  return {'', next_due and tostring(next_due) or ''}
end

-- Claim the next job for a worker, atomically: pop the first queued job in priority order and
-- register it as started in rq's started registry, in one step. There is no moment at which a
-- job is out of its queue but in no registry (rq's multi-queue BLPOP leaves one: rq#1716), so a
-- worker that dies at any point leaves its job where the reaper finds it.
-- `c` holds the claim arguments (schema.CLAIM_ARGS) and `queues`, highest priority first.
-- Returns {queue, id, attempts, hash...}, {'', next_due_epoch_or_empty} or {'suspended'}.
local function claim(c)
  if redis.call('EXISTS', K.suspended) == 1 then
    redis.call('HSET', c.worker_key, W.state, WS.suspended)  -- `rq suspend`: shown, not hidden as idle
    return {'suspended'}
  end
  local now, now_iso = tonumber(c.now), c.now_iso
  if c.now == '' then now, now_iso = server_now() end
  if c.promote == '1' then promote_due(c.queues, now, now_iso) end
  for _, queue in ipairs(c.queues) do
    for _ = 1, 100 do
      local id = redis.call('LPOP', K.queue(queue))
      if not id then break end
      local key = K.job(id)
      local fields = redis.call('HGETALL', key)
      local status, attempts, ttl = nil, 0, false
      for i = 1, #fields, 2 do
        local name = fields[i]
        if name == F.status then status = fields[i + 1]
        elseif name == F.attempts then attempts = tonumber(fields[i + 1]) or 0
        elseif name == F.ttl then ttl = true end
      end
      -- Only a queued job runs: an id pushed twice (rq#1701) or a job canceled, finished or
      -- already running elsewhere is dropped here instead of running again.
      if CAN.claim(status) then
        attempts = attempts + 1
        MOVE.claim(key, S.started, F.started_at, now_iso, F.last_heartbeat, now_iso, F.worker_name, c.worker,
          F.attempts, attempts)
        if ttl then redis.call('PERSIST', key) end
        -- Scored by minus its heartbeat deadline (schema.KEYS['started']): rq's cleanup never takes it.
        redis.call('ZADD', K.started(queue), -(now + tonumber(c.heartbeat_ttl)), id .. ':' .. c.exec_id)
        redis.call('HSET', c.worker_key, W.current_job, id, W.state, WS.busy)
        redis.call('LPOP', K.wake(queue))
        return {queue, id, attempts, unpack(fields)}
      end
    end
  end
  return go_idle(c, now_iso)
end
