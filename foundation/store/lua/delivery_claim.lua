-- delivery_claim: claim many recipients of one delivery-state shard at once (HSETNX each).
-- KEYS[1]   the shard's delivery state hash (address -> state)
-- ARGV[1]   the claim mark written for each new claim
-- ARGV[2..] the recipients' addresses
-- Returns   a list, one per address in ARGV order: 1 where the claim is now ours, 0 where it was held
local out = {}
for i = 2, #ARGV do out[i - 1] = redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[1]) end
return out
