-- Concurrency and rate limits, checked when a job is claimed. A job over a limit is set aside in
-- that limit's waiting list: it stays `queued`, uses no attempt and gets no backoff; it goes back
-- to the front of its queue when a slot frees (`release_slots`, at the end of an execution) or
-- when its rate window allows it (`unblock_due`). A limit is counted by job name (`id` = the
-- name), or by name and the job's limit key (`id` = name:key).

-- The job's name: rq's description starts with it (`name(params)`).
local function name_of(description)
  return string.match(description or '', '^[^(]*')
end

-- The limits that apply to one job, from the worker's table ({concurrency, rate count, rate ms,
-- per-key concurrency, per-key rate count, per-key rate ms}, 0 = none) and the job's key.
local function limits_of(limit, name, key)
  local found = {}
  if limit[1] > 0 or limit[2] > 0 then
    found[#found + 1] = {id = name, conc = limit[1], rate_n = limit[2], window = limit[3] / 1000}
  end
  if key and key ~= '' and (limit[4] > 0 or limit[5] > 0) then
    found[#found + 1] = {id = name .. ':' .. key, conc = limit[4], rate_n = limit[5], window = limit[6] / 1000,
      per_key = true}
  end
  return found
end

-- 0 when limit `l` lets a job start now; else when to look again.
local function blocked_until(l, now)
  if l.conc > 0 then
    -- A holder a minute past its deadline leaked (its job is being reaped): its slot is free.
    redis.call('ZREMRANGEBYSCORE', K.slots(l.id), '-inf', now - 60)
    if redis.call('ZCARD', K.slots(l.id)) >= l.conc then return now + 5 end
  end
  if l.rate_n > 0 then
    redis.call('ZREMRANGEBYSCORE', K.rate(l.id), '-inf', now - l.window)
    if redis.call('ZCARD', K.rate(l.id)) >= l.rate_n then
      return tonumber(redis.call('ZRANGE', K.rate(l.id), 0, 0, 'WITHSCORES')[2]) + l.window
    end
  end
  return 0
end

-- Take the job's slots and count its start: (true, the slots held, space-separated), or (false,
-- the waiting list to set it aside in, when to look again, whether the limit is its key's own).
local function admit(limits, entry, now, deadline)
  for _, l in ipairs(limits) do
    local until_ = blocked_until(l, now)
    if until_ > 0 then return false, K.limit_wait(l.id), until_, l.per_key end
  end
  local held = {}
  for _, l in ipairs(limits) do
    if l.conc > 0 then
      redis.call('ZADD', K.slots(l.id), deadline, entry)
      held[#held + 1] = l.id
    end
    if l.rate_n > 0 then
      redis.call('ZADD', K.rate(l.id), now, entry)
      -- A key seen once (a customer gone) leaves no set behind: it lasts one window.
      redis.call('PEXPIRE', K.rate(l.id), math.ceil(l.window * 1000) + 1000)
    end
  end
  return true, table.concat(held, ' ')
end

local function set_aside(id, wait_key, retry_at)
  redis.call('RPUSH', wait_key, id)
  local current = redis.call('ZSCORE', K.limit_blocked, wait_key)
  if not current or tonumber(current) > retry_at then redis.call('ZADD', K.limit_blocked, retry_at, wait_key) end
end

-- Put back to the front of their queues (or groups) up to `count` jobs waiting in `wait_key`,
-- first first.
local function let_go(wait_key, count)
  local ids = redis.call('LRANGE', wait_key, 0, count - 1)
  redis.call('LTRIM', wait_key, #ids, -1)
  for i = #ids, 1, -1 do
    local fields = redis.call('HMGET', K.job(ids[i]), F.origin, F.limit_key)
    if fields[1] then push_job(fields[1], ids[i], true, fields[2]) end
  end
  if redis.call('EXISTS', wait_key) == 0 then redis.call('ZREM', K.limit_blocked, wait_key) end
end

-- A key held back by its own limit: out of the ring until a slot frees or its window passes
-- (`retry_at`, when it is looked at again at the latest). Its jobs wait in its group, and its
-- group's key is its member in `limit_blocked` (beside the waiting lists).
local function hold_key(queue, key, retry_at)
  local member = K.group(queue .. ':' .. key)
  local current = redis.call('ZSCORE', K.limit_blocked, member)
  if not current or tonumber(current) > retry_at then redis.call('ZADD', K.limit_blocked, retry_at, member) end
end

-- A held key rejoins its queue's ring (if it was held and still has jobs).
local function unhold_key(queue, key)
  local group = K.group(queue .. ':' .. key)
  if redis.call('ZREM', K.limit_blocked, group) == 1 and redis.call('EXISTS', group) == 1 then
    ring_in(queue, key)
  end
end

-- What is due for another look (a rate window passed, or a slot may have freed unseen): waiting
-- lists give their jobs back to their queues, held keys rejoin their rings; the claim sets aside
-- again whatever is still over its limit (bounded per call).
local function unblock_due(now)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', K.limit_blocked, '-inf', now, 'LIMIT', 0, 10)) do
    local queue, key = nil, nil
    local groups = K.group('')
    if string.sub(member, 1, #groups) == groups then  -- a held key's group (queue names have no ':')
      queue, key = string.match(string.sub(member, #groups + 1), '^([^:]*):(.*)$')
    end
    if queue then
      unhold_key(queue, key)
    else
      redis.call('ZADD', K.limit_blocked, now + 1, member)
      let_go(member, 100)
    end
  end
end

-- The execution `entry` of the job at `key` ends: its slots free; one job waiting on a job-wide
-- slot goes back to its queue, a key held back by its own slot rejoins the ring.
local function release_slots(key, entry)
  local slots = redis.call('HGET', key, F.slots)
  if not slots then return end
  local origin, limit_key = unpack(redis.call('HMGET', key, F.origin, F.limit_key))
  for id in string.gmatch(slots, '%S+') do
    if redis.call('ZREM', K.slots(id), entry) == 1 then
      -- name:key is a key's own slot: the key rejoins the ring if it was held back.
      if string.find(id, ':', 1, true) and origin and limit_key then unhold_key(origin, limit_key) end
      let_go(K.limit_wait(id), 1)
    end
  end
  redis.call('HDEL', key, F.slots)
end
