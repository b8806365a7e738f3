"""Provider rate limits held across every worker: a token bucket in Redis (one key, one Lua
script, so it works on a cluster). Over any window of T seconds at most rate × T + burst units
pass, whatever the number of workers."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from foundation.store import keys
from foundation.store.scripts import script

# Refill from the server's clock (TIME), so workers on machines with skewed clocks agree.
TOKEN_BUCKET = script("rate_token_bucket")

# One message per second per chat (Telegram): a key that lives for one second.
PER_ADDRESS = script("rate_per_address")


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, name: str, rate: float, burst: float | None = None) -> None:
        self.redis = redis
        self.key = keys.rate_bucket(name)
        self.rate = rate
        # A small burst keeps every one-second window close to the configured rate.
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._batch = max(1, int(self.burst / 2))
        self._balance = 0
        self._lock = asyncio.Lock()

    async def acquire(self, units: int) -> int:
        """Wait until at least one unit is granted; return how many (≤ units) were granted."""
        wanted = max(1, min(units, int(self.burst)))
        while True:
            granted, wait_ms = await TOKEN_BUCKET(self.redis, keys=[self.key], args=[self.rate, self.burst, wanted])
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

    async def wait_turn(self, address: str) -> None:
        key = keys.rate_bucket(f"{self.name}:{address}")
        while not await PER_ADDRESS(self.redis, keys=[key], args=[self.interval_ms]):  # noqa: ASYNC110 - a Redis key
            await asyncio.sleep(self.interval_ms / 4000)
