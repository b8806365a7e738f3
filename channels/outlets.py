"""The pulled channels of one process (feeds, screens), sharing one stream reader and one cache."""

from __future__ import annotations

from dataclasses import dataclass

from publisher.services import Services

from .cache import RenderCache
from .feeds import Feeds
from .live import EventFollower
from .screens import ScreenOutputs
from .screens.hub import ScreenHub


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
