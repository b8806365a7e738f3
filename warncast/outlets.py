"""The pulled channels of one process (feeds, screens), sharing one stream reader and one cache."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from channels.cache import RenderCache
from channels.context import ChannelContext
from channels.events import EventFollower
from channels.feeds import Feeds
from channels.screens import ScreenOutputs
from channels.screens.hub import ScreenHub


@dataclass(eq=False)
class PageWatchers:
    """Readers of the public page with it open: each holds a queue told the new version of what is
    published, so their page offers the latest without reloading under them."""

    queues: set[asyncio.Queue[str]] = field(default_factory=set)

    def join(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self.queues.add(queue)
        return queue

    def leave(self, queue: asyncio.Queue[str]) -> None:
        self.queues.discard(queue)

    async def on_event(self, event_id: str, fields: dict[str, str]) -> None:
        for queue in self.queues:
            if queue.full():  # only the newest version matters to a reader
                queue.get_nowait()
            queue.put_nowait(event_id)

    def close_all(self) -> None:
        for queue in self.queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait("")


@dataclass
class Outlets:
    follower: EventFollower
    cache: RenderCache
    feeds: Feeds
    screens: ScreenOutputs
    hub: ScreenHub
    pages: PageWatchers

    @classmethod
    def build(cls, ctx: ChannelContext) -> Outlets:
        follower = EventFollower(ctx.redis)
        cache = RenderCache()
        screens = ScreenOutputs(ctx, follower, cache)
        hub = ScreenHub(screens)
        pages = PageWatchers()
        follower.listen(hub.on_event)
        follower.listen(pages.on_event)
        return cls(follower, cache, Feeds(ctx, follower, cache), screens, hub, pages)
