-- sensor_colour_change: record a sensor's colour and raise a monitoring-queue item only on a change.
-- KEYS[1]   sensor colours hash (sensor id -> green | yellow | red; missing means green)
-- KEYS[2]   the monitoring queue stream
-- ARGV[1]   sensor id, ARGV[2] its new colour
-- ARGV[3..] the queue item's fields and values (the script adds `previous`, the old colour)
-- Returns   1 if the colour changed (an item was added), 0 if not
local old = redis.call('HGET', KEYS[1], ARGV[1]) or 'green'
if old == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], '*', 'previous', old, unpack(ARGV, 3, #ARGV))
return 1
