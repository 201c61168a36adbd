-- Record a job's success in one step: status, result, finished registry, expiry, the end of
-- its execution, worker counters, and the release of dependents that can now run.
-- KEYS[1] worker hash ('' for none).
-- ARGV[1] id, ARGV[2] queue, ARGV[3] execution id, ARGV[4] now epoch, ARGV[5] now (rq format),
-- ARGV[6] worker name, ARGV[7] return value (base64, '' for None), ARGV[8] started epoch,
-- ARGV[9] seconds worked.
-- Returns 1, or 0 when this finish was already applied (a retried call after a lost reply).
local id, queue, exec_id = ARGV[1], ARGV[2], ARGV[3]
local now, now_iso, worker = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local key = job_key(id)
local mine = redis.call('ZSCORE', 'rq:wip:' .. queue, id .. ':' .. exec_id)
if not mine and redis.call('HGET', key, 'status') == 'finished' then
  return 0
end
if redis.call('EXISTS', key) == 0 then
  end_execution(id, queue, exec_id, KEYS[1])
  return 0
end

local ttl = tonumber(redis.call('HGET', key, 'result_ttl')) or 500
redis.call('HSET', key, 'status', 'finished', 'ended_at', now_iso, 'last_heartbeat', now_iso)
local result = {'type', '1', 'worker_name', worker, 'execution_id', exec_id,
  'execution_started_at', ARGV[8], 'execution_ended_at', tostring(now)}
if ARGV[7] ~= '' then
  result[#result + 1] = 'return_value'
  result[#result + 1] = ARGV[7]
end
redis.call('XADD', 'rq:results:' .. id, 'MAXLEN', '10', '*', unpack(result))
redis.call('EXPIRE', 'rq:results:' .. id, ttl)
redis.call('EXPIRE', key, ttl)
redis.call('EXPIRE', key .. ':dependencies', ttl)
redis.call('ZADD', 'rq:finished:' .. queue, now + ttl, id)

end_execution(id, queue, exec_id, KEYS[1])
if KEYS[1] ~= '' then
  redis.call('HINCRBY', KEYS[1], 'successful_job_count', 1)
  redis.call('HINCRBYFLOAT', KEYS[1], 'total_working_time', ARGV[9])
end
release_dependents(id, now_iso)
redis.call('EXPIRE', key .. ':dependents', ttl)
return 1
