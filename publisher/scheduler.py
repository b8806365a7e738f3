"""The warnings' clock: publish scheduled warnings whose time has come and expire lapsed ones.

Every process runs the round once a second (`warncast serve` unless told not to, `warncast
worker`), under the supervisor. Every step is a guarded transaction, so several processes running
it do no harm.
"""

from __future__ import annotations

from functools import partial

import redis.asyncio as aioredis

from foundation.areas.registry import AreaRegistry
from foundation.supervisor import Loop
from publisher.workflow import Warnings

INTERVAL = 1.0  # seconds between rounds


async def scheduler_round(registry: AreaRegistry, redis: aioredis.Redis, warnings: Warnings) -> int:
    """One round: bring the areas up to date (expiry and scheduling see the same city as the
    handlers), then publish what is due and expire what has lapsed. Returns how many changed."""
    await registry.refresh(redis)
    return await warnings.run_due()


def scheduler_loop(
    registry: AreaRegistry, redis: aioredis.Redis, warnings: Warnings, interval: float = INTERVAL
) -> Loop:
    # A round takes milliseconds: ten seconds without one, the scheduler is stuck.
    return Loop(
        "scheduler", partial(scheduler_round, registry, redis, warnings), every=interval, within=10.0 + interval
    )
