"""Following the warnings' lifecycle stream: one blocking reader per process.

The workflow XADDs every publication and expiry to `keys.WARNINGS_EVENTS` in the same transaction
that changes the warning, so the stream's last id is a version of "what is published" that every
process agrees on. `EventFollower` keeps that id in memory (the cache key of every feed and screen
rendering, so a read costs no Redis round trip) and tells its listeners about each event (the
screens hub fans them out to live connections).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from foundation.store import keys
from foundation.store.streams import entries, read_entries

log = logging.getLogger(__name__)
Listener = Callable[[str, dict[str, str]], Awaitable[None]]
BLOCK_MS = 5_000


class EventFollower:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.version = "0-0"
        self.live = False  # True while the reader is connected and current
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def current(self) -> str:
        """The version to key renderings by: from memory while following, else from Redis."""
        if self.live:
            return self.version
        return await last_event_id(self.redis)

    async def run(self) -> None:
        """Read the stream forever; on a Redis error, retry and resume from the last id seen."""
        while True:
            try:
                self.version = await last_event_id(self.redis)
                self.live = True
                while True:
                    found = await self.redis.xread({keys.WARNINGS_EVENTS: self.version}, block=BLOCK_MS, count=100)
                    for entry_id, fields in read_entries(found):
                        self.version = entry_id
                        await self._tell(entry_id, fields)
            except asyncio.CancelledError:
                self.live = False
                raise
            except Exception:
                self.live = False
                log.exception("following %s failed; retrying", keys.WARNINGS_EVENTS)
                await asyncio.sleep(1)

    async def _tell(self, entry_id: str, fields: dict[str, str]) -> None:
        for listener in self._listeners:
            try:
                await listener(entry_id, fields)
            except Exception:
                log.exception("listener %r failed on event %s", listener, entry_id)


async def last_event_id(redis: aioredis.Redis) -> str:
    newest = entries(await redis.xrevrange(keys.WARNINGS_EVENTS, count=1))
    return newest[0][0] if newest else "0-0"
