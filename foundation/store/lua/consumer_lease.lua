-- consumer_lease: the one consumer of a group that works at a time; the others stand by.
-- KEYS[1]   the lease (a string: the holder's name, with a time to live)
-- ARGV[1]   this consumer's name
-- ARGV[2]   how long to hold it (ms), counted from now; '0' gives it up if this consumer holds it
-- Returns   1 when this consumer holds the lease now (taken, or extended), else 0.
local holder = redis.call('GET', KEYS[1])
if ARGV[2] == '0' then
  if holder == ARGV[1] then redis.call('DEL', KEYS[1]) end
  return 0
end
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
