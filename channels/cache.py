"""Cached renderings: a thousand readers of one feed cost one rendering.

A rendering is keyed by what the reader asked for (route, filters, language) and stamped with the
version it was made from (the warnings stream's last id, the area registry's version, ...). A reader
with the same key and version gets the stored bytes; concurrent readers of a stale key wait for
one shared rendering instead of each making their own. Renderings that depend on the clock (what is
in force now) carry `valid_until`, the first moment their content would change by itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class Rendering:
    body: bytes
    content_type: str  # with charset where it applies
    last_modified: datetime | None = None
    valid_until: float = math.inf  # epoch seconds of the application clock
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
            self._entries[key] = (version, rendering)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
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
