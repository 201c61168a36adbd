-- Delete the failed (and stopped) jobs of one queue for good: job hash, results, executions,
-- dependency sets and the registry entry. An entry whose job was enqueued again under the same
-- id (so it is alive) only leaves the registry; the live job is kept.
-- Returns {entries looked at, jobs deleted}; fewer entries than asked means the registry is empty.
local registry = K.failed(A.queue)
local deleted = 0
local ids = redis.call('ZRANGE', registry, 0, tonumber(A.limit) - 1)
for _, id in ipairs(ids) do
  local status = redis.call('HGET', K.job(id), F.status)
  redis.call('ZREM', registry, id)
  if not status or CAN.purge(status) then
    redis.call('DEL', K.job(id), K.results(id), K.executions(id), K.dependents(id), K.dependencies(id))
    deleted = deleted + 1
  end
end
return {#ids, deleted}
