-- Delete the failed (and stopped) jobs of one queue for good: job hash, results, executions,
-- dependency sets and the registry entry. An entry whose job was enqueued again under the same
-- id (so it is alive) only leaves the registry; the live job is kept.
-- ARGV[1] queue, ARGV[2] most entries to look at in this call.
-- Returns {entries looked at, jobs deleted}; fewer entries than asked means the registry is empty.
local queue = ARGV[1]
local registry = 'rq:failed:' .. queue
local deleted = 0
local ids = redis.call('ZRANGE', registry, 0, tonumber(ARGV[2]) - 1)
for _, id in ipairs(ids) do
  local key = job_key(id)
  local status = redis.call('HGET', key, 'status')
  redis.call('ZREM', registry, id)
  if not status or status == 'failed' or status == 'stopped' then
    redis.call('DEL', key, 'rq:results:' .. id, 'rq:executions:' .. id, key .. ':dependents',
      key .. ':dependencies')
    deleted = deleted + 1
  end
end
return {#ids, deleted}
