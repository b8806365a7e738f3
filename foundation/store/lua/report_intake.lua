-- report_intake: a citizen report's whole intake, atomic and in one round trip: replay check,
-- rate-limit counters, a fresh report id and every write.
-- KEYS[1]   idempotency key (read and written only when ARGV[1] is not '')
-- KEYS[2]   report id sequence
-- KEYS[3]   the report key's PREFIX, not a key: the report is written at KEYS[3] .. id. Its id is
--           allocated here (INCR KEYS[2]), so the caller cannot know the key; the prefix carries the
--           same {reports} hash tag as every other key here, so the script stays in one cluster slot.
--           This is the one key this script touches that is not declared in KEYS.
-- KEYS[4]   tracking code -> report id hash
-- KEYS[5]   reports index (sorted set: id by created)
-- KEYS[6]   monitoring queue stream
-- KEYS[7]   outbox of notifications to reporters (stream)
-- KEYS[8..] one counter per rate limit
-- ARGV, flat (Lua reads arguments faster than it decodes JSON):
--   [1] fingerprint ('' without an idempotency key: nothing to remember), [2] the report's JSON
--   without its id, [3] its tracking code, [4] ttl of the idempotency key (s), [5] created (epoch s),
--   [6] the number of the queue item's fields and values, then those (without ref), then
--   [limit, window] per counter, then the notification's fields and values, if any.
-- Returns   one scalar (cheaper to parse than a list): the stored idempotency value `id|fingerprint`
--           (text) on a replay, minus the number of the exceeded counter, or the new report id.
if ARGV[1] ~= '' then
  local existing = redis.call('GET', KEYS[1])
  if existing then return existing end
end
local item_end = 6 + tonumber(ARGV[6])
local over = 0
for n = 1, #KEYS - 7 do
  local count = redis.call('INCR', KEYS[7 + n])
  if count == 1 then redis.call('EXPIRE', KEYS[7 + n], ARGV[item_end + 2 * n]) end
  if over == 0 and count > tonumber(ARGV[item_end + 2 * n - 1]) then over = n end
end
if over > 0 then return -over end
local number = redis.call('INCR', KEYS[2])
local id = tostring(number)
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], id .. '|' .. ARGV[1], 'EX', ARGV[4]) end
redis.call('SET', KEYS[3] .. id, '{"id": "' .. id .. '", ' .. string.sub(ARGV[2], 2))
redis.call('HSET', KEYS[4], ARGV[3], id)
redis.call('ZADD', KEYS[5], ARGV[5], id)
redis.call('XADD', KEYS[6], '*', 'ref', id, unpack(ARGV, 7, item_end))
local notice = item_end + 2 * (#KEYS - 7) + 1
if notice <= #ARGV then redis.call('XADD', KEYS[7], '*', unpack(ARGV, notice)) end
return number
