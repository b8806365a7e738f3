-- rate_token_bucket: a provider's token bucket shared by every worker, refilled from the server's
-- clock (TIME), so workers on machines with skewed clocks agree. The key expires after 60 s idle.
-- KEYS[1] the bucket hash (fields tokens, ts)
-- ARGV[1] rate (units per second), ARGV[2] burst (bucket size), ARGV[3] units wanted
-- Returns {granted, 0} when granted > 0 units, else {0, milliseconds to wait for one unit}
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], 60000)
if granted > 0 then return {granted, 0} end
return {0, math.ceil((1 - tokens) * 1000 / rate)}
