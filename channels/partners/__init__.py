"""Partner webhooks: the registry of partner systems and the channel that posts to them, signed."""

from __future__ import annotations

import redis.asyncio as aioredis

from channels.partners.registry import Partner, PartnerRegistry
from publisher.model import Message

__all__ = ["Partner", "PartnerRegistry", "partners_for"]


async def partners_for(redis: aioredis.Redis, message: Message, areas: set[str]) -> list[str]:
    """The partners a message concerns (`areas`: the areas it affects, see dispatch.planner)."""
    return await PartnerRegistry(redis).matching(message.content.grade, areas, message.content.is_drill)
