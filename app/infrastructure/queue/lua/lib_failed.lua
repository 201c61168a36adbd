-- Bounding the failed registries (QUEUE_MAX_FAILED), prepended to the scripts that fail jobs.

-- Keep the failed registry of `queue` (failed and stopped jobs) to at most `max` entries (0: no
-- bound): the ones due to expire first go (the oldest failures, with one failure TTL), deleted
-- as `taskq failed purge` deletes them; an id enqueued again meanwhile only leaves the registry.
-- At most 500 per call, so that lowering the bound never holds Redis for long. Counted in
-- K.pruned(queue), which the workers' metrics export. Returns how many went.
local function prune_failed(queue, max)
  max = tonumber(max) or 0
  if max < 1 then return 0 end
  local registry = K.failed(queue)
  local over = redis.call('ZCARD', registry) - max
  if over < 1 then return 0 end
  local ids = redis.call('ZRANGE', registry, 0, math.min(over, 500) - 1)
  for _, id in ipairs(ids) do
    redis.call('ZREM', registry, id)
    local status = redis.call('HGET', K.job(id), F.status)
    if not status or CAN.purge(status) then
      redis.call('DEL', K.job(id), K.results(id), K.executions(id), K.dependents(id), K.dependencies(id))
    end
  end
  redis.call('INCRBY', K.pruned(queue), #ids)
  return #ids
end
