-- Workflows (chains and groups, workflows.py): their counters, members and callbacks change here,
-- in the same script that finishes, fails, cancels, reaps or expires a member, so no worker can
-- die between "member settled" and "callback due". A member settles once: it leaves the index
-- (and its workflow's pending members) in the step that counts it. A callback is a job created
-- with the workflow, `deferred` until the outcome it waits for: released once (or canceled once,
-- when that outcome did not come), by the step that decides the outcome.

-- Put a deferred workflow job in its queue. Its TTL starts now: it had none while it waited.
local function wf_release(id, now_iso)
  local key = K.job(id)
  local origin, at_front, ttl = unpack(redis.call('HMGET', key, F.origin, F.at_front, F.ttl))
  redis.call('ZREM', K.deferred(origin), id)
  back_to_queue(MOVE.release, id, origin, at_front == '1', now_iso)
  if ttl then redis.call('EXPIRE', key, ttl) end
end

-- End a deferred job that can never run (its dependency did not finish, or its workflow's
-- outcome is not the one it waited for): canceled, with the reason. A workflow's job expires with
-- its failure TTL (it had no expiry while it waited); another keeps the expiry it had.
local function wf_cancel(id, reason, now, now_iso)
  local key = K.job(id)
  local origin, workflow, role, ttl = unpack(redis.call('HMGET', key, F.origin, F.workflow, F.wf_role,
    F.failure_ttl))
  redis.call('ZREM', K.deferred(origin), id)
  redis.call('ZADD', K.canceled(origin), now, id)
  MOVE.cascade(key, S.canceled, F.ended_at, now_iso, F.reason, reason)
  if workflow or role then keep_for(key, nil, nil, id, now, ttl or 604800) end
end

-- Hand a job its input, if it takes one (`F.wants_input`): a JSON document the worker turns into
-- the named param (workflows.decode_input).
local function wf_input(key, document)
  if redis.call('HGET', key, F.wants_input) == '1' then redis.call('HSET', key, F.input, document) end
end

-- A job that ended without finishing (event `e`) reaches the jobs that depend on it: each is
-- canceled (and so on down its chain), unless the edge between them says to go on (`ignore`:
-- it gets no input; `continue`: it gets the failure as its input).
local function wf_dependents(e, events, now, now_iso)
  for _, dep in ipairs(redis.call('SMEMBERS', K.dependents(e.job))) do
    local dkey = K.job(dep)
    if CAN.cascade(redis.call('HGET', dkey, F.status)) then
      local policy = redis.call('HGET', dkey, F.dep_policy)
      if policy == 'ignore' or policy == 'continue' then
        local input = {kind = 'result'}
        if policy == 'continue' then input = {kind = 'failed', job_id = e.job, status = e.outcome} end
        wf_input(dkey, cjson.encode(input))
        wf_release(dep, now_iso)
      else
        wf_cancel(dep, 'dependency ' .. e.job .. ' did not finish', now, now_iso)
        events[#events + 1] = {job = dep, outcome = S.canceled}
      end
    end
  end
end

-- Count a member's outcome in its workflow; keep its result (within the workflow's budget) or
-- list its failure (the first thousand). Whether the failure fails the workflow (policy `fail`).
local function wf_record(wid, member, outcome, value, policy)
  local wkey = K.wf(wid)
  redis.call('HINCRBY', wkey, outcome, 1)
  if outcome == S.finished then
    value = value or ''
    local used, budget = unpack(redis.call('HMGET', wkey, WF.result_bytes, WF.budget))
    local size = #member + #value
    if (tonumber(used) or 0) + size <= (tonumber(budget) or 0) then
      redis.call('HSET', K.wf_results(wid), member, value)
      redis.call('HINCRBY', wkey, WF.result_bytes, size)
    else
      redis.call('HSET', wkey, WF.truncated, '1')
    end
    return false
  end
  if policy == 'ignore' then
    redis.call('HINCRBY', wkey, WF.ignored, 1)
    return false
  end
  if redis.call('HLEN', K.wf_failures(wid)) < 1000 then
    redis.call('HSET', K.wf_failures(wid), member, outcome)
  else
    redis.call('HSET', wkey, WF.truncated, '1')
  end
  return policy == 'fail'
end

-- What a workflow's callbacks get: its outcome, its counts, its members' results by id (base64
-- of the serialized value, as rq stores results) and its failures, as JSON.
local function wf_summary(wid)
  local fields = redis.call('HGETALL', K.wf(wid))
  local h = {}
  for i = 1, #fields, 2 do h[fields[i]] = fields[i + 1] end
  local results, failures = {}, {}
  local found = redis.call('HGETALL', K.wf_results(wid))
  for i = 1, #found, 2 do results[found[i]] = found[i + 1] end
  found = redis.call('HGETALL', K.wf_failures(wid))
  for i = 1, #found, 2 do failures[found[i]] = found[i + 1] end
  local counts = {pending = redis.call('HLEN', K.wf_members(wid))}
  for _, name in ipairs({WF.finished, WF.failed, WF.stopped, WF.canceled, WF.expired, WF.ignored}) do
    counts[name] = tonumber(h[name]) or 0
  end
  return cjson.encode({kind = 'group', workflow = wid, state = h[WF.state], total = tonumber(h[WF.total]),
    counts = counts, results = results, failures = failures, truncated = h[WF.truncated] == '1',
    first_failure = h[WF.first_failure]})
end

-- The outcome of a workflow, decided once: its callbacks for that outcome are released with the
-- summary, the others canceled; a workflow that is itself a member (a chain in a group) settles
-- in its parent, with its last job's result.
local function wf_decide(wid, state, first_failure, events, now, now_iso)
  local wkey = K.wf(wid)
  redis.call('HSET', wkey, WF.state, state, WF.ended_at, now_iso)
  if first_failure then redis.call('HSET', wkey, WF.first_failure, first_failure) end
  local summary = nil
  for _, role in ipairs({WF.on_complete, WF.on_success, WF.on_failure}) do
    local id = redis.call('HGET', wkey, role)
    if id and CAN.release(redis.call('HGET', K.job(id), F.status)) then
      if role == WF.on_complete or (role == WF.on_success) == (state == WFS.succeeded) then
        summary = summary or wf_summary(wid)
        wf_input(K.job(id), summary)
        wf_release(id, now_iso)
      else
        wf_cancel(id, 'not needed: workflow ' .. wid .. ' ' .. state .. ' (this is its ' .. role .. ')', now, now_iso)
        events[#events + 1] = {job = id, outcome = S.canceled}
      end
    end
  end
  local parent, last = unpack(redis.call('HMGET', wkey, WF.parent, WF.last))
  if parent then
    local value = nil
    if state == WFS.succeeded and last then value = redis.call('HGET', K.wf_results(wid), last) end
    events[#events + 1] = {wf = parent, member = wid, outcome = state == WFS.succeeded and S.finished or S.failed,
      value = value}
  end
end

-- A workflow whose members have all settled (and whose outcome is decided) is closed: out of the
-- sweep's set, its keys kept as long as its outcome says, then gone. Never before.
local function wf_close(wid, now, now_iso)
  local wkey = K.wf(wid)
  redis.call('ZREM', K.wf_live, wid)
  local state, keep_ok, keep_failed = unpack(redis.call('HMGET', wkey, WF.state, WF.keep_ok, WF.keep_failed))
  redis.call('HSET', wkey, WF.closed_at, now_iso)
  local keep = state == WFS.succeeded and keep_ok or keep_failed
  keep_for(wkey, K.wf_results(wid), nil, wid, now, keep)
  keep_for(K.wf_failures(wid), nil, nil, wid, now, keep)
end

-- A member of workflow `e.wf` settled (event `e`): counted, once; the outcome decided when this
-- was a failure that fails it, or the last member; closed when no member is left.
local function wf_member(e, events, now, now_iso)
  local members = K.wf_members(e.wf)
  local policy = redis.call('HGET', members, e.member)
  if not policy then return end  -- settled already (or not a member)
  redis.call('HDEL', members, e.member)
  if string.sub(policy, 1, 3) == 'wf:' then policy = string.sub(policy, 4) end
  local fails = wf_record(e.wf, e.member, e.outcome, e.value, policy)
  local left = redis.call('HLEN', members)
  if redis.call('HGET', K.wf(e.wf), WF.state) == WFS.open then
    if fails then
      wf_decide(e.wf, WFS.failed, e.member, events, now, now_iso)
    elseif left == 0 then
      wf_decide(e.wf, WFS.succeeded, nil, events, now, now_iso)
    end
  end
  if left == 0 then wf_close(e.wf, now, now_iso) end
end

-- Settle what follows from `events`, in order, each of which may add more: {job = id, outcome,
-- value} a job ended (finished, failed, stopped, canceled, or `expired`: its TTL ran out before
-- it ran) and {wf = id, member, outcome, value} a member of a workflow settled. A loop, not
-- recursion: a chain of 10,000 jobs canceled at its head is 10,000 events, not a deep stack.
local function wf_settle(events, now, now_iso)
  local i = 0
  while i < #events and i < 200000 do
    i = i + 1
    local e = events[i]
    if e.job then
      if e.outcome ~= S.finished then wf_dependents(e, events, now, now_iso) end
      local wid = redis.call('HGET', K.wf_index, e.job)
      if wid then
        redis.call('HDEL', K.wf_index, e.job)
        events[#events + 1] = {wf = wid, member = e.job, outcome = e.outcome, value = e.value}
      end
    else
      wf_member(e, events, now, now_iso)
    end
  end
end

-- Job `id` ended for good (`outcome`, with its result `value` when it finished): its dependents
-- and its workflow learn it.
local function wf_job_ended(id, outcome, value, now, now_iso)
  wf_settle({{job = id, outcome = outcome, value = value}}, now, now_iso)
end

-- A job id whose hash is gone (its TTL ran out while it waited): if it was a workflow's member,
-- not settled yet, it settles as expired. Only a member is looked up: any other id costs one HGET.
local function wf_vanished(id, now, now_iso)
  if redis.call('HGET', K.wf_index, id) then wf_job_ended(id, WF.expired, nil, now, now_iso) end
end
