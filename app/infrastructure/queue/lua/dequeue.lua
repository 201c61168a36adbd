-- Claim the next job for a worker (see `claim` in lib_worker.lua).
-- KEYS[1] worker hash.
-- ARGV[1] now epoch, ARGV[2] now (rq timestamp); both '' for the server's clock (a claim sent
-- behind a blocking pop), ARGV[3] worker name, ARGV[4] execution id,
-- ARGV[5] heartbeat ttl, ARGV[6] worker ttl, ARGV[7] '1' to promote due scheduled jobs,
-- ARGV[8] n queues, ARGV[9..] queue names, highest priority first.
return claim(claim_args(KEYS[1], ARGV, 1))
