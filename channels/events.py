"""Following the warnings' lifecycle stream: one blocking reader per process.

The workflow XADDs every publication and expiry to `keys.WARNINGS_EVENTS` in the same transaction
that changes the warning, so the stream's last id is a version of "what is published" that every
process agrees on. `EventFollower` keeps that id in memory (the cache key of every feed and screen
rendering, so a read costs no Redis round trip) and tells its listeners about each event (the
screens hub fans them out to live connections), and its watchers when it loses Redis and when it
is back (the hub marks live screens stale, then brings them up to date).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from channels.cache import redis_away
from foundation.store import keys
from foundation.store.cluster import socket_timeout
from foundation.store.streams import entries, read_entries
from foundation.supervisor import beat

log = logging.getLogger(__name__)
Listener = Callable[[str, dict[str, str]], Awaitable[None]]
Watcher = Callable[[bool], Awaitable[None]]  # told False when following is lost, True when it is back
BLOCK_MS = 5_000
RETRY_SECONDS = 1.0


class EventFollower:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.version = "0-0"
        self.live = False  # True while the reader is connected and current
        self._listeners: list[Listener] = []
        self._watchers: list[Watcher] = []
        self._lost = False  # following failed since it last worked (watchers were told)

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def watch(self, watcher: Watcher) -> None:
        self._watchers.append(watcher)

    async def current(self) -> str:
        """The version to key renderings by: from memory while following, else from Redis."""
        if self.live:
            return self.version
        return await last_event_id(self.redis)

    def block_ms(self) -> int:
        """How long one XREAD waits: half the client's socket timeout, so that a hung Redis is
        noticed (the read gets its block plus the socket timeout) within a couple of seconds and
        live screens are told, instead of after a full block."""
        timeout = socket_timeout(self.redis)
        if not timeout:
            return BLOCK_MS
        return max(100, min(BLOCK_MS, int(timeout * 1000 / 2)))

    async def run(self) -> None:
        """Read the stream until Redis fails, reporting in to the supervisor after every read (each
        returns within `block_ms`). A failure is raised to the supervisor, which logs it, shows it
        in the loop's health and runs this again (after its back-off) from the newest id."""
        try:
            self.version = await last_event_id(self.redis)
            self.live = True
            if self._lost:
                self._lost = False
                log.warning("following %s again from %s", keys.WARNINGS_EVENTS, self.version)
                await self._tell_watchers(True)
            block = self.block_ms()
            while True:
                found = await self.redis.xread({keys.WARNINGS_EVENTS: self.version}, block=block, count=100)
                for entry_id, fields in read_entries(found):
                    self.version = entry_id
                    await self._tell(entry_id, fields)
                beat()
        except asyncio.CancelledError:
            self.live = False
            raise
        except Exception as exc:
            self.live = False
            if redis_away(exc) and not self._lost:
                log.warning("following %s lost (redis away: %r)", keys.WARNINGS_EVENTS, exc)
            if not self._lost:
                self._lost = True
                await self._tell_watchers(False)
            raise

    async def _tell(self, entry_id: str, fields: dict[str, str]) -> None:
        for listener in self._listeners:
            try:
                await listener(entry_id, fields)
            except Exception:
                log.exception("listener %r failed on event %s", listener, entry_id)

    async def _tell_watchers(self, live: bool) -> None:
        for watcher in self._watchers:
            try:
                await watcher(live)
            except Exception:
                log.exception("watcher %r failed (live=%s)", watcher, live)


async def last_event_id(redis: aioredis.Redis) -> str:
    newest = entries(await redis.xrevrange(keys.WARNINGS_EVENTS, count=1))
    return newest[0][0] if newest else "0-0"
