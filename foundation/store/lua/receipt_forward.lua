-- receipt_forward: move a recipient's delivery state forward from `sent|...` only, so a repeated
-- or late delivery receipt does nothing.
-- KEYS[1] the shard's delivery state hash (address -> state)
-- ARGV[1] the recipient's address
-- ARGV[2] the new state (`delivered|...` or `failed|...`)
-- Returns 1 if the state was changed, 0 if not
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current or string.sub(current, 1, 5) ~= 'sent|' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
