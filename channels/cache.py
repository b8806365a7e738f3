"""Cached renderings: a thousand readers of one feed cost one rendering.

A rendering is keyed by what the reader asked for (route, filters, language) and stamped with the
version it was made from (the warnings stream's last id, the area registry's version, ...). A reader
with the same key and version gets the stored bytes; concurrent readers of a stale key wait for
one shared rendering instead of each making their own. Renderings that depend on the clock (what is
in force now) carry `valid_until`, the first moment their content would change by itself.

While Redis is away (refused, hung, loading, read-only during a failover) a reader gets the last
rendering of its key, marked `stale`, instead of an error: a public page, feed or screen keeps
showing the last known warnings. Only a key never rendered before has nothing to give (503).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    ClusterError,
    MasterDownError,
    ReadOnlyError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from foundation.errors import Unavailable

# What "Redis is away" looks like: refused or dropped (BusyLoadingError: still loading its data),
# no answer within the socket timeout (redis-py's TimeoutError, asyncio's from a deadline around a
# hung call), a failover under way (ReadOnlyError: a primary demoted to replica; MasterDownError: a
# replica that lost its primary), a cluster without a primary for a slot (CLUSTERDOWN, a slot not
# covered) or still moving one after every redirection was followed (ASK, MOVED, TRYAGAIN), or our
# own Unavailable.
REDIS_AWAY: tuple[type[BaseException], ...] = (
    ClusterDownError,
    ClusterError,
    SlotNotCoveredError,
    TryAgainError,
    AskError,  # and MovedError, its subclass
    RedisConnectionError,
    BusyLoadingError,
    RedisTimeoutError,
    ReadOnlyError,
    MasterDownError,
    TimeoutError,  # asyncio.TimeoutError is this class since Python 3.11
    Unavailable,
)
# The same replies inside another error: a Lua script's write refused ("Error running script ...:
# -READONLY You can't write against a read only replica."), or a blocked read released because the
# server became a replica ("UNBLOCKED force unblock ...").
_AWAY_REPLY = re.compile(r"(?:^|-)(?:READONLY|LOADING|MASTERDOWN|UNBLOCKED|CLUSTERDOWN|TRYAGAIN) ")
AWAY_SECONDS = 1.0  # after a failure, stale answers come at once for this long instead of waiting again


def redis_away(error: BaseException) -> bool:
    """True when `error` (or what it was raised from) means Redis cannot be had right now."""
    return any(
        isinstance(e, REDIS_AWAY) or (isinstance(e, ResponseError) and _AWAY_REPLY.search(str(e)) is not None)
        for e in (error, error.__cause__)
    )


@dataclass(frozen=True)
class Rendering:
    body: bytes
    content_type: str  # with charset where it applies
    last_modified: datetime | None = None
    valid_until: float = math.inf  # epoch seconds of the application clock
    stale: bool = False  # the last rendering, served while Redis is away
    etag: str = field(init=False)  # strong: the same bytes give the same tag in every process

    def __post_init__(self) -> None:
        digest = hashlib.blake2b(self.body, digest_size=12).hexdigest()
        object.__setattr__(self, "etag", f'"{digest}"')


def version_time(version: str) -> datetime | None:
    """The time inside a Redis stream id ("1719800000000-0"), used as Last-Modified."""
    millis = version.split("-", 1)[0]
    if not millis.isdigit() or millis == "0":
        return None
    return datetime.fromtimestamp(int(millis) // 1000, UTC)


class RenderCache:
    """A bounded LRU of renderings with single-flight rendering per key."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self.renders = 0  # how many renderings were made (tests and benchmarks read it)
        self._entries: OrderedDict[Hashable, tuple[Hashable, Rendering]] = OrderedDict()
        self._pending: dict[tuple[Hashable, Hashable], asyncio.Future[Rendering]] = {}
        self._away_until = 0.0  # monotonic: Redis failed a moment ago, do not wait for it again yet

    @property
    def away(self) -> bool:
        """Redis failed within the last AWAY_SECONDS (a reader with a last rendering gets it at once)."""
        return time.monotonic() < self._away_until

    def note_away(self) -> None:
        self._away_until = time.monotonic() + AWAY_SECONDS

    def note_back(self) -> None:
        self._away_until = 0.0

    def last(self, key: Hashable) -> Rendering | None:
        """The last rendering of `key`, whatever it was made from, marked stale; None if never made."""
        found = self._entries.get(key)
        if found is None:
            return None
        return found[1] if found[1].stale else dataclasses.replace(found[1], stale=True)

    def keep(self, key: Hashable, rendering: Rendering) -> None:
        """Remember a rendering made outside `get` (a page), as the last one of `key`."""
        self._store(key, None, rendering)

    async def fresh_or_stale(self, key: Hashable, make: Callable[[], Awaitable[Rendering]]) -> Rendering:
        """`make()` (the fresh rendering of `key`); while Redis is away, the last rendering of `key`,
        marked stale. Without one, the failure is raised (the web layer answers 503)."""
        last = self.last(key) if self.away else None
        if last is not None:
            return last
        try:
            return await make()
        except Exception as exc:
            if not redis_away(exc):
                raise
            self.note_away()
            last = self.last(key)
            if last is None:
                raise
            return last

    def _store(self, key: Hashable, version: Hashable, rendering: Rendering) -> None:
        self._entries[key] = (version, rendering)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    async def get(
        self, key: Hashable, version: Hashable, now: float, render: Callable[[], Awaitable[Rendering]]
    ) -> Rendering:
        found = self._entries.get(key)
        if found is not None and found[0] == version and now < found[1].valid_until:
            self._entries.move_to_end(key)
            return found[1]
        pending = self._pending.get((key, version))
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Rendering] = asyncio.get_running_loop().create_future()
        self._pending[(key, version)] = future
        try:
            rendering = await render()
            self.renders += 1
            self._store(key, version, rendering)
            future.set_result(rendering)
            return rendering
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiting readers re-raise it, nobody else logs it
            raise
        finally:
            del self._pending[(key, version)]
