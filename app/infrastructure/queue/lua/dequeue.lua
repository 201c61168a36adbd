-- Claim the next job for a worker (see `claim` in lib_worker.lua).
local now, now_iso = server_now()
return claim({worker_key = A.worker_key, now = now, now_iso = now_iso, worker = A.worker, exec_id = A.exec_id,
  heartbeat_ttl = A.heartbeat_ttl, worker_ttl = A.worker_ttl, promote = A.promote, queues = A.queues})
