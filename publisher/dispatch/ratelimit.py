"""Provider rate limits held across every worker: a token bucket in Redis (one key, one Lua
script, so it works on a cluster). Over any window of T seconds at most rate × T + burst units
pass, whatever the number of workers."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from foundation.store import keys

# Refill from the server's clock (TIME), so workers on machines with skewed clocks agree.
TOKEN_BUCKET = """
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
"""

# One message per second per chat (Telegram): a key that lives for one second.
PER_ADDRESS = "return redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) and 1 or 0"


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, name: str, rate: float, burst: float | None = None) -> None:
        self.redis = redis
        self.key = keys.rate_bucket(name)
        self.rate = rate
        # A small burst keeps every one-second window close to the configured rate.
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._script = redis.register_script(TOKEN_BUCKET)
        self._batch = max(1, int(self.burst / 2))
        self._balance = 0
        self._lock = asyncio.Lock()

    async def acquire(self, units: int) -> int:
        """Wait until at least one unit is granted; return how many (≤ units) were granted."""
        wanted = max(1, min(units, int(self.burst)))
        while True:
            granted, wait_ms = await self._script(keys=[self.key], args=[self.rate, self.burst, wanted])
            if granted:
                return int(granted)
            await asyncio.sleep(max(1, int(wait_ms)) / 1000)

    async def take(self, units: int) -> None:
        """Spend `units`, fetching tokens from Redis in small batches to save round trips.

        The local balance never exceeds half a burst, so the global bound still holds."""
        async with self._lock:  # one fetch at a time: no stampede of concurrent senders on Redis
            while self._balance < units:
                self._balance += await self.acquire(max(units - self._balance, self._batch))
            self._balance -= units


class PerAddressLimiter:
    def __init__(self, redis: aioredis.Redis, name: str, interval_ms: int = 1000) -> None:
        self.redis = redis
        self.name = name
        self.interval_ms = interval_ms
        self._script = redis.register_script(PER_ADDRESS)

    async def wait_turn(self, address: str) -> None:
        key = keys.rate_bucket(f"{self.name}:{address}")
        while not await self._script(keys=[key], args=[self.interval_ms]):  # noqa: ASYNC110 - a Redis key
            await asyncio.sleep(self.interval_ms / 4000)
