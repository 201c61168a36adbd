-- Settle deferred jobs whose dependencies ended outside taskq's worker: rq's own cleanup failing an
-- abandoned job (AbandonedJobError), a plain rq worker failing or finishing one, a job deleted by
-- hand. Our scripts settle dependents when they record an outcome; nobody else does ours.
-- A dependency failed, stopped or canceled: the job is canceled (and its own dependents); all
-- finished (or gone, as release_dependents treats them): it is queued. Looks at `limit` deferred
-- jobs from `offset`. Returns {looked, '|', canceled ids..., '|', released ids...}.
local queue = A.queue
local now, now_iso = server_now()
local offset = tonumber(A.offset)
local ids = redis.call('ZRANGE', K.deferred(queue), offset, offset + tonumber(A.limit) - 1)
local canceled, released = {}, {}
for _, id in ipairs(ids) do
  local key = K.job(id)
  if CAN.cascade(redis.call('HGET', key, F.status)) then
    local doomed, waiting = nil, false
    for _, parent in ipairs(redis.call('SMEMBERS', K.dependencies(id))) do
      local st = redis.call('HGET', K.job(parent), F.status)
      if st and IN.doomed(st) then doomed = parent break end
      if st and st ~= S.finished then waiting = true end
    end
    if doomed then
      redis.call('ZREM', K.deferred(queue), id)
      redis.call('ZADD', K.canceled(queue), now, id)
      MOVE.cascade(key, S.canceled, F.ended_at, now_iso, F.reason, 'dependency ' .. doomed .. ' did not finish')
      cancel_dependents(id, now, now_iso)
      canceled[#canceled + 1] = id
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
