"""What the dispatch works with, built once per process: the store, the areas, the warnings, the
subscribers and the channel policy, and the started channels (through their interface only)."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio as aioredis

from foundation.areas.registry import AreaRegistry
from foundation.settings import Settings
from publisher.dispatch.channel import Channel
from publisher.policy import ChannelPolicy
from publisher.subscribers import Subscribers
from publisher.workflow import Warnings


@dataclass
class DispatchContext:
    settings: Settings
    redis: aioredis.Redis
    registry: AreaRegistry
    warnings: Warnings
    subscribers: Subscribers
    policy: ChannelPolicy
    # Filled in place when the process starts its channels, emptied when it closes them.
    channels: dict[str, Channel] = field(default_factory=dict)
