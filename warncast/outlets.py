"""The pulled channels of one process (feeds, screens), sharing one stream reader and one cache."""

from __future__ import annotations

from dataclasses import dataclass

from channels.cache import RenderCache
from channels.context import ChannelContext
from channels.events import EventFollower
from channels.feeds import Feeds
from channels.screens import ScreenOutputs
from channels.screens.hub import ScreenHub


@dataclass
class Outlets:
    follower: EventFollower
    cache: RenderCache
    feeds: Feeds
    screens: ScreenOutputs
    hub: ScreenHub

    @classmethod
    def build(cls, ctx: ChannelContext) -> Outlets:
        follower = EventFollower(ctx.redis)
        cache = RenderCache()
        screens = ScreenOutputs(ctx, follower, cache)
        hub = ScreenHub(screens)
        follower.listen(hub.on_event)
        return cls(follower, cache, Feeds(ctx, follower, cache), screens, hub)
