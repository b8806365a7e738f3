-- planner_union: the union of a few subscriber index sets in one hash slot, unless it is too big.
-- KEYS[1..n] the index sets (one hash slot)
-- ARGV[1]    the largest total size (sum of SCARD) returned as members
-- Returns    the members of the union (a list), or the total size (an integer) when that is over
--            ARGV[1]: the caller then scans the sets, so no single reply holds a huge set
local total = 0
for i = 1, #KEYS do total = total + redis.call('SCARD', KEYS[i]) end
if total > tonumber(ARGV[1]) then return total end
return redis.call('SUNION', unpack(KEYS))
