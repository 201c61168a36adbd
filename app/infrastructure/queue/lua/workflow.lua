-- Create a whole workflow (a chain, a group with its callbacks, chains inside it) in one step,
-- all or nothing: no crash can leave half of it written. Its members are indexed and counted as
-- pending; a chain's later jobs wait (deferred) on the one before; a callback waits (deferred) for
-- its workflow's outcome. Jobs that wait have no expiry meanwhile: their TTL starts when they are
-- released. `A.plan` (JSON, workflows.py): {top, workflows = [{id, kind, parent, last, members =
-- {{id, policy}...}, roles = {on_success = id, ...}, budget, keep_ok, keep_failed}], jobs = {{wf,
-- role, wants_input (0|1), dep_policy}...}}, one per job record, in order.
-- Returns {'ok'}; {'exists'} when the workflow `top` exists already (the call is repeated: nothing
-- is written); {'conflict', id} for another workflow id taken, {'live', job id, status} for a job
-- id that belongs to a live job. Nothing is written unless 'ok'.
local plan = cjson.decode(A.plan)
if redis.call('EXISTS', K.wf(plan.top)) == 1 then return {'exists'} end
for _, w in ipairs(plan.workflows) do
  if redis.call('EXISTS', K.wf(w.id)) == 1 then return {'conflict', w.id} end
end
for _, job in ipairs(A.jobs) do
  job.old = redis.call('HGET', K.job(job.job_id), F.status)
  if IN.live(job.old) then return {'live', job.job_id, job.old} end
end

local now, now_iso = server_now()
for i, job in ipairs(A.jobs) do
  local part = plan.jobs[i]
  local wid, role, wants, dep_policy = part[1], part[2], part[3], part[4]
  if job.old then clear_ended(job.job_id) end
  redis.call('SADD', K.queues, K.queue(job.queue))
  local status = S.queued
  if #job.deps > 0 or role ~= '' then status = S.deferred elseif due_at(job, now) then status = S.scheduled end
  create_job(job, status, now, now_iso, job.deps)
  local key = K.job(job.job_id)
  if status == S.deferred and job.ttl ~= '' then redis.call('PERSIST', key) end
  local fields = {}
  if wid ~= '' then
    fields[#fields + 1] = F.workflow
    fields[#fields + 1] = wid
    redis.call('HSET', K.wf_index, job.job_id, wid)
  end
  if role ~= '' then
    fields[#fields + 1] = F.wf_role
    fields[#fields + 1] = role
  end
  if wants == 1 then
    fields[#fields + 1] = F.wants_input
    fields[#fields + 1] = '1'
  end
  if dep_policy ~= '' then
    fields[#fields + 1] = F.dep_policy
    fields[#fields + 1] = dep_policy
  end
  if #fields > 0 then redis.call('HSET', key, unpack(fields)) end
end

for _, w in ipairs(plan.workflows) do
  local wkey = K.wf(w.id)
  redis.call('HSET', wkey, WF.kind, w.kind, WF.state, WFS.open, WF.total, #w.members, WF.created_at, now_iso,
    WF.budget, w.budget, WF.keep_ok, w.keep_ok, WF.keep_failed, w.keep_failed)
  if w.parent ~= '' then redis.call('HSET', wkey, WF.parent, w.parent) end
  if w.last ~= '' then redis.call('HSET', wkey, WF.last, w.last) end
  for role, id in pairs(w.roles) do redis.call('HSET', wkey, role, id) end
  local pairs_ = {}
  for _, member in ipairs(w.members) do
    pairs_[#pairs_ + 1] = member[1]
    pairs_[#pairs_ + 1] = member[2]
    if #pairs_ >= 1000 then
      redis.call('HSET', K.wf_members(w.id), unpack(pairs_))
      pairs_ = {}
    end
  end
  if #pairs_ > 0 then redis.call('HSET', K.wf_members(w.id), unpack(pairs_)) end
  redis.call('ZADD', K.wf_live, now, w.id)
end
return {'ok'}
