-- Settle deferred jobs whose dependencies ended outside taskq's worker: rq's own cleanup failing an
-- abandoned job (AbandonedJobError), a plain rq worker failing or finishing one, a job deleted by
-- hand. Our scripts settle dependents when they record an outcome; nobody else does ours.
-- A dependency failed, stopped or canceled: the job is canceled (and its own dependents); all
-- finished (or gone, as release_dependents treats them): it is queued. A workflow's edge may say
-- to go on after a dependency that did not finish; a workflow's member whose hash expired while it
-- waited settles as expired (and so do the jobs after it). Looks at `limit` deferred
-- jobs from `offset`. Returns {looked, '|', canceled ids..., '|', released ids...}.
local queue = A.queue
local now, now_iso = server_now()
local offset = tonumber(A.offset)
local ids = redis.call('ZRANGE', K.deferred(queue), offset, offset + tonumber(A.limit) - 1)
local canceled, released = {}, {}
for _, id in ipairs(ids) do
  local key = K.job(id)
  local status, role = unpack(redis.call('HMGET', key, F.status, F.wf_role))
  if not status then  -- its hash expired while it waited: a workflow's member settles as expired
    redis.call('ZREM', K.deferred(queue), id)
    wf_vanished(id, now, now_iso)
  elseif CAN.cascade(status) and not role then  -- a callback waits for its workflow, not for jobs
    local doomed, doomed_status, waiting = nil, nil, false
    for _, parent in ipairs(redis.call('SMEMBERS', K.dependencies(id))) do
      local st = redis.call('HGET', K.job(parent), F.status)
      if not st and redis.call('HGET', K.wf_index, parent) then st = WF.expired end  -- expired unrun
      if st and (IN.doomed(st) or st == WF.expired) then doomed, doomed_status = parent, st break end
      if st and st ~= S.finished then waiting = true end
    end
    if doomed then
      -- As if the dependency had just ended: its dependents (this one) by their edges' policies.
      wf_job_ended(doomed, doomed_status, nil, now, now_iso)
      local after = redis.call('HGET', key, F.status)
      if after == S.canceled then canceled[#canceled + 1] = id elseif after == S.queued then released[#released + 1] = id end
    elseif not waiting then
      redis.call('ZREM', K.deferred(queue), id)
      back_to_queue(MOVE.release, id, queue, redis.call('HGET', key, F.at_front) == '1', now_iso)
      released[#released + 1] = id
    end
  end
end
local reply = {#ids, '|'}
for _, id in ipairs(canceled) do reply[#reply + 1] = id end
reply[#reply + 1] = '|'
for _, id in ipairs(released) do reply[#reply + 1] = id end
return reply
