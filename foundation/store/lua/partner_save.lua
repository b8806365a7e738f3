-- partner_save: store a partner record and its secret together, only if the id is new (create) or
-- exists already (replace).
-- KEYS[1] partners hash (id -> record JSON), KEYS[2] partner secrets hash (id -> secret)
-- ARGV[1] partner id, ARGV[2] record JSON, ARGV[3] secret ('' keeps the stored one),
-- ARGV[4] mode: 'create' or anything else for replace
-- Returns 1 if stored, 0 if the id exists (create) or does not (replace)
local exists = redis.call('HEXISTS', KEYS[1], ARGV[1])
if (ARGV[4] == 'create' and exists == 1) or (ARGV[4] ~= 'create' and exists == 0) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
return 1
