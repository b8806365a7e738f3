-- rate_per_address: one message per interval per address (Telegram: one a second per chat).
-- KEYS[1] the address's turn key (lives for the interval)
-- ARGV[1] the interval in milliseconds
-- Returns 1 if it is the address's turn (the key was set), 0 if not
return redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) and 1 or 0
