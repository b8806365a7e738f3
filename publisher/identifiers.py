"""GB/T 35965.1 identifiers: `ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N`, 31 characters.

14 digits of issuing unit (6 area, 3 sector, 3 + 2 unit), the local issue time to the second and a
one-digit sequence. The sequence gives ten identifiers per second; an eleventh in the same second
takes the next second, so identifiers stay unique across every process sharing the Redis.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import redis.asyncio as aioredis

from foundation.store import keys

PATTERN = re.compile(r"^\d{14}_\d{14}_\d$")


def is_identifier(value: str) -> bool:
    return bool(PATTERN.match(value))


async def new_identifier(redis: aioredis.Redis, prefix: str, now: datetime) -> str:
    moment = now.replace(microsecond=0)
    while True:
        second = moment.strftime("%Y%m%d%H%M%S")
        key = keys.identifier_sequence(second)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            sequence, _ = await pipe.execute()
        if sequence <= 10:
            return f"{prefix}_{second}_{sequence - 1}"
        moment += timedelta(seconds=1)
