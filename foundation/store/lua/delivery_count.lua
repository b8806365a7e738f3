-- delivery_count: add one batch of delivery counts to a hash once, however often the batch is sent.
-- KEYS[1]   the counts hash (name -> count)
-- KEYS[2]   the batches of one segment run already added to it (a hash in the same slot)
-- ARGV[1]   the batch's id within the run
-- ARGV[2]   how long the run's record of added batches is kept, in seconds
-- ARGV[3]   the counts hash's expiry in seconds, or 0 to leave it as it is
-- ARGV[4..] name, increment pairs
-- Returns   1 when the batch was added now, 0 when it had been added before
if redis.call('HSETNX', KEYS[2], ARGV[1], 1) == 0 then return 0 end
redis.call('EXPIRE', KEYS[2], ARGV[2])
for i = 4, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 1
