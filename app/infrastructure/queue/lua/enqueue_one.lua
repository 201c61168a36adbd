-- Create one job that depends on nothing: the hot path of `enqueue`, kept lean (enqueue.lua
-- handles batches and dependencies). With an explicit id, a live job that already has it is
-- returned instead (idempotency); a generated id (128 random bits) cannot collide, so its check
-- is skipped. The queue is added to rq's set of queues on a producer's first job to it.
-- ARGV[1] id, ARGV[2] queue, ARGV[3] run_at epoch ('' = now), ARGV[4] ttl ('' = none),
-- ARGV[5] now (rq format), ARGV[6] data, ARGV[7] description, ARGV[8] timeout, ARGV[9] result ttl,
-- ARGV[10] failure ttl, ARGV[11] retries, ARGV[12] retry intervals (JSON), ARGV[13] meta ('' = none),
-- ARGV[14] trace context ('' = none), ARGV[15] '1' to check for a live job with this id,
-- ARGV[16] '1' to register the queue.
-- Returns {1, status} when created, {0, status} for a live job that already has the id.
local id, queue = ARGV[1], ARGV[2]
local key = job_key(id)
if ARGV[15] == '1' then
  local old = redis.call('HGET', key, 'status')
  if is_live(old) then return {0, old} end
  if old then clear_ended(id) end
end
local status = ARGV[3] ~= '' and 'scheduled' or 'queued'
redis.call('HSET', key, 'status', status, 'created_at', ARGV[5], 'enqueued_at', ARGV[5], 'data', ARGV[6],
  'origin', queue, 'description', ARGV[7], 'timeout', ARGV[8], 'result_ttl', ARGV[9], 'failure_ttl', ARGV[10],
  'retries_left', ARGV[11], 'retry_intervals', ARGV[12])
if ARGV[13] ~= '' then redis.call('HSET', key, 'meta', ARGV[13]) end
if ARGV[14] ~= '' then redis.call('HSET', key, 'taskq_trace', ARGV[14]) end
if ARGV[4] ~= '' then
  redis.call('HSET', key, 'ttl', ARGV[4])
  redis.call('EXPIRE', key, ARGV[4])
end
if ARGV[16] == '1' then redis.call('SADD', 'rq:queues', 'rq:queue:' .. queue) end
if status == 'scheduled' then
  redis.call('ZADD', 'rq:scheduled:' .. queue, ARGV[3], id)
else
  push_job(queue, id, false)
end
return {1, status}
