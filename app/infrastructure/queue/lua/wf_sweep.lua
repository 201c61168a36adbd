-- The sweep of the workflows with members pending (the reaper's, one worker at a time): a member
-- settles here when nothing else told its workflow, so that no workflow waits forever on a fixed
-- expiry or on a message that never came. A member whose job hash is gone expired before it ran
-- (its id was never claimed: a paused queue, a worker-less one); one whose job ended outside our
-- scripts (rq's own cleanup, a plain rq worker, a hand edit) settles with that status; a member
-- workflow that is gone settles as expired. Looks at about `limit` members in all, the workflows
-- looked at longest ago first, each from where its last sweep stopped.
-- Returns {members looked at, members settled}.
local now, now_iso = server_now()
local budget, looked, settled = tonumber(A.limit), 0, 0
for _, wid in ipairs(redis.call('ZRANGE', K.wf_live, 0, 99)) do
  if budget <= 0 then break end
  local wkey = K.wf(wid)
  if redis.call('EXISTS', wkey) == 0 then
    redis.call('ZREM', K.wf_live, wid)
  else
    redis.call('ZADD', K.wf_live, now, wid)  -- to the back of the line
    local cursor = redis.call('HGET', wkey, WF.sweep_cursor) or '0'
    local found = redis.call('HSCAN', K.wf_members(wid), cursor, 'COUNT', 200)
    local items = found[2]
    for i = 1, #items, 2 do
      local member, policy = items[i], items[i + 1]
      looked = looked + 1
      if string.sub(policy, 1, 3) == 'wf:' then
        if redis.call('EXISTS', K.wf(member)) == 0 then
          wf_settle({{wf = wid, member = member, outcome = WF.expired}}, now, now_iso)
          settled = settled + 1
        end
      else
        local status = redis.call('HGET', K.job(member), F.status)
        if not status then
          redis.call('HDEL', K.wf_index, member)
          wf_settle({{job = member, outcome = WF.expired}, {wf = wid, member = member, outcome = WF.expired}}, now,
            now_iso)
          settled = settled + 1
        elseif status == S.finished or IN.doomed(status) then
          local value = nil
          if status == S.finished then
            local last = redis.call('XREVRANGE', K.results(member), '+', '-', 'COUNT', 1)[1]
            if last then
              for j = 1, #last[2], 2 do if last[2][j] == RF.return_value then value = last[2][j + 1] end end
            end
          end
          redis.call('HDEL', K.wf_index, member)
          wf_settle({{job = member, outcome = status, value = value}, {wf = wid, member = member, outcome = status,
            value = value}}, now, now_iso)
          settled = settled + 1
        end
      end
    end
    budget = budget - #items / 2 - 1
    if redis.call('EXISTS', wkey) == 1 then
      redis.call('HSET', wkey, WF.sweep_cursor, found[1])
      if redis.call('HLEN', K.wf_members(wid)) == 0 then
        redis.call('ZREM', K.wf_live, wid)  -- no member left, nothing left to wait for
      end
    end
  end
end
return {looked, settled}
