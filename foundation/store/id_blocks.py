"""Ids from one Redis counter, reserved a block at a time: `await ids.next()`.

A script that writes a record under its id must be given the record's key in KEYS (a cluster runs a
script on the node of its keys), so the id has to be known before the script runs. One INCRBY per
block keeps that off the hot path; ids stay unique across processes and rise within each, and a
block a process leaves unused (it stopped) is a gap, never a duplicate.

The next block is reserved once half of the current one is used, so a caller never waits for the
INCRBY: when every caller waited for it, every concurrent intake stalled for a round trip (an fsync
with `appendfsync always`) once per block, about 3 % of the intake benchmark's time.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis


class IdBlocks:
    def __init__(self, redis: aioredis.Redis, counter: str, block: int = 100) -> None:
        self.redis, self.counter, self.block = redis, counter, block
        self._next = self._end = 0  # the next id of the current block, and one past its last
        self._lock = asyncio.Lock()
        self._ahead: asyncio.Future[int] | None = None  # the end of the next block, being reserved

    async def next(self) -> int:
        if self._next >= self._end:
            async with self._lock:  # one reservation for every caller waiting on it
                if self._next >= self._end:
                    await self._take_next_block()
        number = self._next
        self._next += 1
        if self._ahead is None and self._end - self._next < self.block // 2:
            self._ahead = self._reserve_soon()
        return number

    async def _take_next_block(self) -> None:
        ahead = self._ahead
        if ahead is None or (ahead.done() and (ahead.cancelled() or ahead.exception() is not None)):
            ahead = self._ahead = self._reserve_soon()  # none yet, or one that failed a while ago: ask now
        try:
            end = await asyncio.shield(ahead)  # a caller that gives up leaves the reservation to the next
        finally:
            if ahead.done():  # taken, failed or cancelled: the next block is asked for anew
                self._ahead = None
        self._next, self._end = end - self.block, end

    def _reserve_soon(self) -> asyncio.Future[int]:
        reserving = asyncio.ensure_future(self._reserve())
        # A failure is for the caller that takes the block; none may come (the process stops).
        reserving.add_done_callback(lambda done: done.cancelled() or done.exception())
        return reserving

    async def _reserve(self) -> int:
        return int(await self.redis.incrby(self.counter, self.block)) + 1
