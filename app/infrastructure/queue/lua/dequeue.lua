-- Take the next job for a worker, atomically: promote due scheduled jobs, pop the first
-- runnable job in priority order, and register its execution as started, all in one step.
-- There is no moment at which a job is out of its queue but not in the started registry
-- (rq's multi-queue BLPOP leaves one: rq#1716), so a worker that dies at any point leaves
-- its job where the reaper will find it.
-- KEYS[1] worker hash.
-- ARGV[1] now epoch, ARGV[2] now (rq timestamp), ARGV[3] worker name, ARGV[4] execution id,
-- ARGV[5] heartbeat ttl, ARGV[6] worker ttl, ARGV[7] n queues, ARGV[8..] queue names.
-- Returns {queue, id, attempts, hash...} or {'', next_due_epoch_or_empty} or {'suspended'}.
local now, now_iso, worker, exec_id = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local hb_ttl, worker_ttl, n = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local worker_key = KEYS[1]

if redis.call('EXISTS', 'rq:suspended') == 1 then
  return {'suspended'}
end

for i = 1, n do
  local queue = ARGV[7 + i]
  local skey = 'rq:scheduled:' .. queue
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', skey, '-inf', now, 'LIMIT', 0, 100)) do
    redis.call('ZREM', skey, id)
    local key = job_key(id)
    if redis.call('HGET', key, 'status') == 'scheduled' then
      redis.call('HSET', key, 'status', 'queued', 'enqueued_at', now_iso)
      push_job(queue, id, redis.call('HGET', key, 'enqueue_at_front') == '1')
    end
  end
end

for i = 1, n do
  local queue = ARGV[7 + i]
  for _ = 1, 100 do
    local id = redis.call('LPOP', 'rq:queue:' .. queue)
    if not id then break end
    local key = job_key(id)
    local status = redis.call('HGET', key, 'status')
    -- Only a queued job runs: an id pushed twice (rq#1701) or a job canceled, finished or
    -- already running elsewhere is dropped here instead of running again.
    if status == 'queued' then
      local fields = redis.call('HGETALL', key)
      local attempts = redis.call('HINCRBY', key, 'taskq_attempts', 1)
      redis.call('HSET', key, 'status', 'started', 'started_at', now_iso, 'last_heartbeat', now_iso,
        'worker_name', worker)
      redis.call('PERSIST', key)
      local ekey = 'rq:execution:' .. id .. ':' .. exec_id
      redis.call('HSET', ekey, 'id', exec_id, 'created_at', tostring(now), 'last_heartbeat', tostring(now),
        'worker_name', worker)
      redis.call('EXPIRE', ekey, hb_ttl)
      redis.call('ZADD', 'rq:executions:' .. id, now + hb_ttl + 60, exec_id)
      redis.call('EXPIRE', 'rq:executions:' .. id, hb_ttl + 60)
      redis.call('ZADD', 'rq:wip:' .. queue, now + hb_ttl, id .. ':' .. exec_id)
      redis.call('HSET', worker_key, 'current_job', id, 'current_job_working_time', 0, 'state', 'busy',
        'last_heartbeat', now_iso)
      redis.call('EXPIRE', worker_key, worker_ttl)
      redis.call('LPOP', 'taskq:wake:' .. queue)
      return {queue, id, attempts, unpack(fields)}
    end
  end
end

-- Nothing to run: every wake-up token of these queues is stale.
local next_due = false
for i = 1, n do
  local queue = ARGV[7 + i]
  redis.call('DEL', 'taskq:wake:' .. queue)
  local first = redis.call('ZRANGE', 'rq:scheduled:' .. queue, 0, 0, 'WITHSCORES')
  if first[2] and (not next_due or tonumber(first[2]) < next_due) then
    next_due = tonumber(first[2])
  end
end
redis.call('HSET', worker_key, 'state', 'idle', 'last_heartbeat', now_iso)
redis.call('EXPIRE', worker_key, worker_ttl)
return {'', next_due and tostring(next_due) or ''}
