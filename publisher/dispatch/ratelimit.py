"""Provider rate limits held across every worker: a token bucket in Redis (one key, one Lua
script, so it works on a cluster). Over any window of T seconds at most rate × T + burst units
pass, whatever the number of workers.

A worker fetches tokens in small batches and keeps the rest for its next sends, but tokens held
locally are only good for one PERIOD after Redis last answered: a worker that loses Redis sends at
most what it holds (never more than rate × PERIOD units, the bucket's burst) within one PERIOD, and
then nothing until Redis answers again.
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from foundation.store import keys
from foundation.store.scripts import script
from foundation.supervisor import beat

PERIOD = 0.1  # seconds: the bucket holds one period of the rate (its burst); local tokens last one period

# Refill from the server's clock (TIME), so workers on machines with skewed clocks agree.
TOKEN_BUCKET = script("rate_token_bucket")

# One message per second per chat (Telegram): a key that lives for one second.
PER_ADDRESS = script("rate_per_address")


class RateLimiter:
    def __init__(
        self, redis: aioredis.Redis, name: str, rate: float, burst: float | None = None, period: float = PERIOD
    ) -> None:
        self.redis = redis
        self.key = keys.rate_bucket(name)
        self.rate = rate
        self.period = period
        # A small burst keeps every one-second window close to the configured rate.
        self.burst = burst if burst is not None else max(1.0, rate * period)
        # Fetched in batches to save round trips; never more than one period's worth is held.
        self._batch = max(1, int(min(self.burst, rate * period) / 2))
        self._balance = 0
        self._good_until = 0.0  # monotonic: the local balance may be spent until then
        self._failed_at = -1.0  # monotonic: when a fetch last failed
        self._failure: RedisError | None = None
        self._lock = asyncio.Lock()

    async def acquire(self, units: int) -> int:
        """Wait until at least one unit is granted; return how many (≤ units) were granted."""
        wanted = max(1, min(units, int(self.burst)))
        while True:
            granted, wait_ms = await TOKEN_BUCKET(self.redis, keys=[self.key], args=[self.rate, self.burst, wanted])
            self._good_until = time.monotonic() + self.period  # Redis answered
            beat()  # the sending loop is alive: it gets tokens, or waits its turn for them
            if granted:
                return int(granted)
            await asyncio.sleep(max(1, int(wait_ms)) / 1000)

    async def take(self, units: int) -> None:
        """Spend `units`, fetching tokens from Redis in small batches to save round trips.

        The local balance stays under half a burst, so the global bound still holds; and it is
        dropped once Redis has not answered for a period, so a worker cut off from Redis stops
        sending within one period (the next fetch fails, or waits for Redis)."""
        arrived = time.monotonic()
        async with self._lock:  # one fetch at a time: no stampede of concurrent senders on Redis
            if self._failed_at >= arrived:  # a fetch failed while we waited: so would ours
                raise RedisError(f"rate limit {self.key}: Redis failed: {self._failure!r}") from self._failure
            if self._balance and time.monotonic() >= self._good_until:
                self._balance = 0  # Redis has not answered for a period: stop spending what we hold
            while self._balance < units:
                try:
                    self._balance += await self.acquire(max(units - self._balance, self._batch))
                except RedisError as exc:
                    self._failed_at, self._failure = time.monotonic(), exc
                    raise
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
