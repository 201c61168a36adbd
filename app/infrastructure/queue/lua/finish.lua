-- Record a job's success in one step: status, result, finished registry, expiry, the end of
-- its execution, and the release of dependents that can now run. Optionally claim the next job
-- in the same call, so a busy worker needs one round trip per job.
-- KEYS[1] worker hash ('' for none).
-- ARGV[1] id, ARGV[2] queue, ARGV[3] execution id, ARGV[4] now epoch, ARGV[5] now (rq format),
-- ARGV[6] worker name, ARGV[7] return value (base64, '' for None), ARGV[8] result ttl,
-- ARGV[9] '1' to claim next, ARGV[10] '1' if the job had dependencies, then the claim arguments
-- of dequeue.lua.
-- Returns {1 | 0 (already applied), claim reply...}.
local id, queue, exec_id = ARGV[1], ARGV[2], ARGV[3]
local now, now_iso, worker = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local key = job_key(id)
local claim_next = ARGV[9] == '1'
local done = 0
-- Ours if our execution was still registered; else this finish was applied already (a retried
-- call after a lost reply), or the reaper took the job back and it must not run again.
local mine = redis.call('ZREM', 'rq:wip:' .. queue, id .. ':' .. exec_id) == 1
local status = mine and 'started' or redis.call('HGET', key, 'status')
if status and (mine or status ~= 'finished') then
  local ttl = tonumber(ARGV[8])
  redis.call('HSET', key, 'status', 'finished', 'ended_at', now_iso, 'last_heartbeat', now_iso)
  if ARGV[7] ~= '' then
    redis.call('XADD', 'rq:results:' .. id, 'MAXLEN', '~', '10', '*', 'type', '1', 'worker_name', worker,
      'return_value', ARGV[7])
  else
    redis.call('XADD', 'rq:results:' .. id, 'MAXLEN', '~', '10', '*', 'type', '1', 'worker_name', worker)
  end
  redis.call('EXPIRE', 'rq:results:' .. id, ttl)
  redis.call('EXPIRE', key, ttl)
  redis.call('ZADD', 'rq:finished:' .. queue, now + ttl, id)
  if redis.call('EXISTS', key .. ':dependents') == 1 then
    release_dependents(id, now_iso)
    redis.call('EXPIRE', key .. ':dependents', ttl)
  end
  if ARGV[10] == '1' then
    redis.call('EXPIRE', key .. ':dependencies', ttl)
  end
  done = 1
end
if not claim_next and KEYS[1] ~= '' then
  redis.call('HDEL', KEYS[1], 'current_job')
end
if claim_next then
  return {done, unpack(claim(claim_args(KEYS[1], ARGV, 11)))}
end
return {done}
