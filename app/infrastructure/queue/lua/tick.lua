-- Fire a schedule's due ticks, exactly once however many workers and hosts try. They all compute
-- the same ticks from the same rule; this script enqueues them only if the schedule's last tick
-- is still the one the caller read (`last_seen`); else another worker fired them and nothing is
-- written. No lease decides anything. The last tick lives in the schedule's own hash, with no
-- expiry: it outlives the jobs (a fast job's id is no marker: arq#196). A tick in the future by
-- Redis's clock never fires. `first` (an epoch) starts a schedule seen for the first time at that
-- tick, unfired. With overlap 'skip', a tick that comes while the previous run is pending is
-- skipped and counted.
-- Returns {'ok', enqueued, skipped} or {'moved', the last tick as it is now}.
local state = K.schedule(A.name)
local last = redis.call('HGET', state, SF.last_tick) or ''
if last ~= A.last_seen then return {'moved', last} end
local now, now_iso = server_now()
if A.first ~= '' then
  redis.call('HSET', state, SF.last_tick, A.first, SF.last_tick_at, now_iso)
  return {'ok', 0, 0}
end
local enqueued, skipped = 0, 0
local last_tick = tonumber(last) or -1
local previous = redis.call('HGET', state, SF.last_job)
for _, job in ipairs(A.ticks) do
  if job.tick > now then break end
  if job.tick > last_tick then
    last_tick = job.tick
    if A.overlap == 'skip' and previous and IN.pending(redis.call('HGET', K.job(previous), F.status)) then
      skipped = skipped + 1
    elseif not IN.live(redis.call('HGET', K.job(job.job_id), F.status)) then
      redis.call('SADD', K.queues, K.queue(job.queue))
      create_job(job, S.queued, now, now_iso, {})
      previous = job.job_id
      enqueued = enqueued + 1
    end
  end
end
if A.through ~= '' and tonumber(A.through) <= now then last_tick = math.max(last_tick, tonumber(A.through)) end
redis.call('HSET', state, SF.last_tick, string.format('%d', last_tick), SF.last_tick_at, now_iso)
if previous then redis.call('HSET', state, SF.last_job, previous) end
redis.call('HINCRBY', state, SF.skipped, skipped)
redis.call('HINCRBY', state, SF.missed, tonumber(A.missed))
redis.call('HINCRBY', state, SF.enqueued, enqueued)
return {'ok', enqueued, skipped}
