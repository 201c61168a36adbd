-- Worker-side functions (claim), prepended to the worker's scripts after the prelude.

-- Move due scheduled jobs into their queues (bounded per call).
local function promote_due(queues, now, now_iso)
  for _, queue in ipairs(queues) do
    local skey = K.scheduled(queue)
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', skey, '-inf', now, 'LIMIT', 0, 100)) do
      redis.call('ZREM', skey, id)
      local key = K.job(id)
      local status = redis.call('HGET', key, F.status)
      if CAN.promote(status) then
        back_to_queue(MOVE.promote, id, queue, redis.call('HGET', key, F.at_front) == '1', now_iso)
      elseif not status then
        wf_vanished(id, now, now_iso)  -- expired while scheduled
      end
    end
  end
end

-- Nothing to run: every wake-up token of these queues is stale; the worker is idle until the next
-- due scheduled job or limit window: in how many seconds (by Redis's clock) is returned, and '1'
-- when jobs wait on a limit (a worker in burst mode waits for them instead of exiting).
local function go_idle(c, skipped)
  local next_due = false
  local function sooner(at)
    if at and (not next_due or tonumber(at) < next_due) then next_due = tonumber(at) end
  end
  for _, queue in ipairs(c.queues) do
    if redis.call('TYPE', K.wake(queue)).ok == 'list' then redis.call('DEL', K.wake(queue)) end
    local ok, first = pcall(redis.call, 'ZRANGE', K.scheduled(queue), 0, 0, 'WITHSCORES')
    if ok then sooner(first[2]) end
  end
  local waiting = '0'
  if c.limits then
    local first = redis.call('ZRANGE', K.limit_blocked, 0, 0, 'WITHSCORES')
    if first[2] then waiting = '1' end
    sooner(first[2])
  end
  redis.call('HDEL', c.worker_key, W.current_job)
  redis.call('HSET', c.worker_key, W.state, WS.idle, W.last_heartbeat, c.now_iso)
  redis.call('EXPIRE', c.worker_key, c.worker_ttl)
  return {'', next_due and tostring(math.max(0, next_due - c.now)) or '', waiting, unpack(skipped)}
end

-- Whether `key` is of `kind` (or absent): checked before a script writes to it, so that a key
-- of the wrong type (written by anyone) makes the script skip it instead of failing halfway.
local function writable(key, kind)
  local found = redis.call('TYPE', key).ok
  return found == 'none' or found == kind
end

-- The job's fields a worker needs (schema.CLAIM_FIELDS, a bounded read), as name, value pairs,
-- and by name. nil when the key is not a job hash: there is nothing to run.
local function claim_fields(key)
  local names = LIST.claim_fields
  local ok, values = pcall(redis.call, 'HMGET', key, unpack(names))
  if not ok then return nil end
  local pairs_, got = {}, {}
  for i, name in ipairs(names) do
    if values[i] then
      pairs_[#pairs_ + 1] = name
      pairs_[#pairs_ + 1] = values[i]
      got[name] = values[i]
    end
  end
  return pairs_, got
end

-- Whether the job may start now under the worker's limits. On success, the slots it holds ('' for
-- none). When not: a job from its key's group (`group_queue` set) held back by its key's own limit
-- goes back to the head of its group and the key leaves the ring for a while; any other job is set
-- aside in the limit's waiting list.
local function within_limits(c, id, got, group_queue)
  local name = name_of(got[F.description])
  local limit = c.limits and c.limits[name]
  if not limit then return true, '' end
  local key = got[F.limit_key]
  local ok, held, retry_at, per_key = admit(limits_of(limit, name, key), id .. ':' .. c.exec_id, c.now,
    c.now + tonumber(c.heartbeat_ttl))
  if ok then return true, held end
  if per_key and group_queue then
    redis.call('LPUSH', K.group(group_queue .. ':' .. key), id)
    hold_key(group_queue, key, retry_at)
  else
    set_aside(id, held, retry_at)
  end
  return false, nil, per_key
end

-- Register the claimed job as started under this execution, and return the claim's reply.
local function start(c, queue, id, key, fields, got, held)
  local attempts = (tonumber(got[F.attempts]) or 0) + 1
  MOVE.claim(key, S.started, F.started_at, c.now_iso, F.last_heartbeat, c.now_iso, F.worker_name, c.worker,
    F.attempts, attempts, F.execution, c.exec_id)
  if held ~= '' then redis.call('HSET', key, F.slots, held) end
  if got[F.ttl] then redis.call('PERSIST', key) end
  -- Scored by minus its heartbeat deadline (schema.KEYS['started']): rq's cleanup never takes it.
  redis.call('ZADD', K.started(queue), -(c.now + tonumber(c.heartbeat_ttl)), id .. ':' .. c.exec_id)
  redis.call('HSET', c.worker_key, W.current_job, id, W.state, WS.busy)
  if writable(K.wake(queue), 'list') then redis.call('LPOP', K.wake(queue)) end
  return {queue, id, attempts, unpack(fields)}
end

-- Whether a queue can be claimed from: not paused, and its keys of the right type (a queue
-- with a key of the wrong type, written by hand, is skipped and named instead of failing halfway).
local function claimable(queue, skipped)
  if redis.call('SISMEMBER', K.paused, queue) == 1 then return false end
  if writable(K.queue(queue), 'list') and writable(K.started(queue), 'zset') and writable(K.ring(queue), 'list')
  then return true end
  skipped[#skipped + 1] = queue
  return false
end

-- Start job `id` if it may run now: queued, and within its limits. Returns the claim's reply, or
-- nil and whether its key's own limit held it back (it was dropped, set aside or put back).
local function try_start(c, queue, id, group_queue)
  local key = K.job(id)
  local fields, got = claim_fields(key)
  -- Only a queued job runs: an id pushed twice (rq#1701) or a job canceled, finished or
  -- already running elsewhere is dropped here instead of running again.
  if not (fields and CAN.claim(got[F.status])) then
    if fields and not got[F.status] then wf_vanished(id, c.now, c.now_iso) end  -- its TTL ran out
    return nil, false
  end
  local ok, held, per_key = within_limits(c, id, got, group_queue)
  if ok then return start(c, queue, id, key, fields, got, held) end
  return nil, per_key
end

-- The next job of a queue's plain list that may start, or nil (`budget.left` ids looked at, at
-- most).
local function from_list(c, queue, budget)
  while budget.left > 0 do
    budget.left = budget.left - 1
    local id = redis.call('LPOP', K.queue(queue))
    if not id then return nil end
    local reply = try_start(c, queue, id, nil)
    if reply then return reply end
  end
end

-- The next job of a queue's keyed jobs: the keys take turns (the ring), one job per turn, so one
-- key's ten thousand jobs do not hold back another key's one. A key whose group is empty leaves
-- the ring and the queue's set of groups; a key held back by its own limit leaves the ring only.
local function from_ring(c, queue, budget)
  while budget.left > 0 do
    budget.left = budget.left - 1
    local limit_key = redis.call('LPOP', K.ring(queue))
    if not limit_key then return nil end
    local group = K.group(queue .. ':' .. limit_key)
    local ok_type, id = pcall(redis.call, 'LPOP', group)
    local reply, per_key = nil, false
    if ok_type and id then reply, per_key = try_start(c, queue, id, queue) end
    if not per_key then
      if ok_type and redis.call('EXISTS', group) == 1 then
        redis.call('RPUSH', K.ring(queue), limit_key)  -- its next job, at its next turn
      else
        redis.call('SREM', K.groups(queue), limit_key)
      end
    end
    if reply then return reply end
  end
end

-- Claim the next job for a worker, atomically: pop the first queued job in priority order and
-- register it as started in rq's started registry, in one step. There is no moment at which a
-- job is out of its queue but in no registry (rq's multi-queue BLPOP leaves one: rq#1716), so a
-- worker that dies at any point leaves its job where the reaper finds it. The claim's execution
-- id is written into the job: every later write for it is fenced by that id.
-- In a queue, jobs without a limit key come first, then the keyed jobs, round-robin by key.
-- `c` holds the claim arguments (schema.CLAIM_ARGS), `now`/`now_iso` (Redis's clock) and
-- `queues`, highest priority first.
-- Returns {queue, id, attempts, fields...}, {'', seconds_to_next_due_or_empty, waiting_on_limits,
-- skipped...} or {'suspended'}.
local function claim(c)
  if redis.call('EXISTS', K.suspended) == 1 then
    redis.call('HSET', c.worker_key, W.state, WS.suspended)  -- `rq suspend`: shown, not hidden as idle
    return {'suspended'}
  end
  c.limits = c.limits ~= '' and cjson.decode(c.limits) or nil
  if c.limits then unblock_due(c.now) end
  if c.promote == '1' then promote_due(c.queues, c.now, c.now_iso) end
  local skipped = {}
  for _, queue in ipairs(c.queues) do
    if claimable(queue, skipped) then
      -- Bounded: a thousand ids that may not run (canceled, run elsewhere, over a limit) is a few
      -- milliseconds.
      local budget = {left = 1000}
      local reply = from_list(c, queue, budget) or from_ring(c, queue, budget)
      if reply then return reply end
    end
  end
  return go_idle(c, skipped)
end
