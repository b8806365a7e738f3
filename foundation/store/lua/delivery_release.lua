-- delivery_release: give back claims still held under a mark (sends that never completed).
-- KEYS[1]   the shard's delivery state hash (address -> state)
-- ARGV[1]   the claim mark
-- ARGV[2..] the recipients' addresses; each is deleted only where its state is still exactly the mark
-- Returns   the number of claims released
local n = 0
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then n = n + redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return n
