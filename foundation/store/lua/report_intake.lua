-- report_intake: a citizen report's whole intake, atomic and in one round trip: replay check,
-- rate-limit counters and every write. The report's id is reserved by the caller beforehand (an id
-- given up here, on a replay or an exceeded limit, is a gap in the numbers, never a duplicate).
-- KEYS[1]   idempotency key (read and written only when ARGV[1] is not '')
-- KEYS[2]   the report's key
-- KEYS[3]   tracking code -> report id hash
-- KEYS[4]   reports index (sorted set: id by created)
-- KEYS[5]   monitoring queue stream
-- KEYS[6]   outbox of notifications to reporters (stream)
-- KEYS[7..] one counter per rate limit
-- ARGV, flat (Lua reads arguments faster than it decodes JSON):
--   [1] fingerprint ('' without an idempotency key: nothing to remember), [2] the report id, [3] the
--   report's JSON, [4] its tracking code, [5] ttl of the idempotency key (s), [6] created (epoch s),
--   [7] the number of the queue item's fields and values, then those (without ref), then
--   [limit, window] per counter, then the notification's fields and values, if any.
-- Returns   one scalar (cheaper to parse than a list): the stored idempotency value `id|fingerprint`
--           (text) on a replay, minus the number of the exceeded counter, or 0 once stored.
if ARGV[1] ~= '' then
  local existing = redis.call('GET', KEYS[1])
  if existing then return existing end
end
local item_end = 7 + tonumber(ARGV[7])
local over = 0
for n = 1, #KEYS - 6 do
  local count = redis.call('INCR', KEYS[6 + n])
  if count == 1 then redis.call('EXPIRE', KEYS[6 + n], ARGV[item_end + 2 * n]) end
  if over == 0 and count > tonumber(ARGV[item_end + 2 * n - 1]) then over = n end
end
if over > 0 then return -over end
local id = ARGV[2]
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], id .. '|' .. ARGV[1], 'EX', ARGV[5]) end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[4], id)
redis.call('ZADD', KEYS[4], ARGV[6], id)
redis.call('XADD', KEYS[5], '*', 'ref', id, unpack(ARGV, 8, item_end))
local notice = item_end + 2 * (#KEYS - 6) + 1
if notice <= #ARGV then redis.call('XADD', KEYS[6], '*', unpack(ARGV, notice)) end
return 0
