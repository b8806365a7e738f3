"""Ids from one Redis counter, reserved a block at a time: `await ids.next()`.

A script that writes a record under its id must be given the record's key in KEYS (a cluster runs a
script on the node of its keys), so the id has to be known before the script runs. One INCRBY per
block keeps that off the hot path; ids stay unique across processes and rise within each, and a
block a process leaves unused (it stopped) is a gap, never a duplicate.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis


class IdBlocks:
    def __init__(self, redis: aioredis.Redis, counter: str, block: int = 100) -> None:
        self.redis, self.counter, self.block = redis, counter, block
        self._next = self._end = 0  # the next id of the current block, and one past its last
        self._lock = asyncio.Lock()

    async def next(self) -> int:
        if self._next >= self._end:
            async with self._lock:  # one reservation for every caller waiting on it
                if self._next >= self._end:
                    end = int(await self.redis.incrby(self.counter, self.block)) + 1
                    self._next, self._end = end - self.block, end
        number = self._next
        self._next += 1
        return number
