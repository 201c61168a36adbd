-- Take or renew the metrics lease: the one worker that exports the cluster-wide gauges (queue
-- depth and age, jobs per state, workers). A hash with an expiry, so that only commands every
-- worker's ACL already has are needed.
-- Returns 1 when `owner` holds the lease now, else 0.
local holder = redis.call('HGET', K.metrics_leader, 'owner')
if holder and holder ~= A.owner then return 0 end
redis.call('HSET', K.metrics_leader, 'owner', A.owner)
redis.call('EXPIRE', K.metrics_leader, tonumber(A.ttl))
return 1
