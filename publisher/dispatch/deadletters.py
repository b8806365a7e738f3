"""Dead letters: deliveries that failed every attempt, shown in the console and replayable."""

from __future__ import annotations

import json
from typing import Any

from foundation.store import keys
from foundation.store.streams import as_fields, decoded
from publisher.dispatch import notifications
from publisher.dispatch.context import DispatchContext
from publisher.dispatch.jobs import shard_of


async def list_dead(ctx: DispatchContext, count: int = 200) -> tuple[int, list[dict[str, Any]]]:
    total = await ctx.redis.llen(keys.DISPATCH_DEAD)
    raw = await ctx.redis.lrange(keys.DISPATCH_DEAD, 0, count - 1)
    return total, [{**json.loads(r), "raw": r} for r in raw]


async def replay(ctx: DispatchContext, limit: int = 10_000) -> int:
    """Put dead letters back on the queue as first attempts (RPOP decides who replays each)."""
    replayed = 0
    while replayed < limit:
        raw = await ctx.redis.rpop(keys.DISPATCH_DEAD)
        if raw is None:
            break
        job = json.loads(decoded(raw))
        replayed += 1
        if await notifications.requeue(ctx, job):
            continue  # a status message to a citizen reporter, back on its own stream
        address = job["to"]
        async with ctx.redis.pipeline(transaction=False) as pipe:
            pipe.hdel(keys.delivery_state(job["msg"], job["ch"], shard_of(address)), address)
            pipe.hincrby(keys.delivery_stats(job["msg"]), f"{job['ch']}.dead", -1)
            pipe.xadd(
                keys.DISPATCH_QUEUE,
                as_fields({k: job[k] for k in ("msg", "ch", "kind", "to", "earlier")} | {"attempt": "0"}),
            )
            await pipe.execute()
    return replayed
