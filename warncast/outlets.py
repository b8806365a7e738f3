"""The pulled channels of one process (feeds, screens), sharing one stream reader and one cache."""

from __future__ import annotations

from dataclasses import dataclass

from channels.cache import RenderCache
from channels.events import EventFollower
from channels.feeds import Feeds
from channels.screens import ScreenOutputs
from channels.screens.hub import ScreenHub
from warncast.services import Services


@dataclass
class Outlets:
    follower: EventFollower
    cache: RenderCache
    feeds: Feeds
    screens: ScreenOutputs
    hub: ScreenHub

    @classmethod
    def build(cls, services: Services) -> Outlets:
        follower = EventFollower(services.redis)
        cache = RenderCache()
        screens = ScreenOutputs(services, follower, cache)
        hub = ScreenHub(screens)
        follower.listen(hub.on_event)
        return cls(follower, cache, Feeds(services, follower, cache), screens, hub)
