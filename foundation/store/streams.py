"""Consumer-group plumbing shared by the planner, the dispatch workers and the notifier."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

Entry = tuple[str, dict[str, str]]


async def ensure_group(redis: aioredis.Redis, stream: str, group: str) -> None:
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def next_entries(
    redis: aioredis.Redis,
    stream: str,
    group: str,
    consumer: str,
    *,
    reclaim_after: float,
    count: int,
    block_ms: int | None,
    own_pending: bool = False,
) -> list[Entry]:
    """Entries a dead consumer left (idle longer than `reclaim_after` s), then, with `own_pending`,
    our own unacknowledged ones (after a restart under the same name), and only then new ones."""
    _, reclaimed, *_ = await redis.xautoclaim(
        stream, group, consumer, min_idle_time=int(reclaim_after * 1000), start_id="0-0", count=count
    )
    entries: list[Entry] = list(reclaimed)
    if own_pending:
        own = await redis.xreadgroup(group, consumer, {stream: "0"}, count=count)
        entries += [e for _, batch in own for e in batch]
    if not entries:
        fresh = await redis.xreadgroup(group, consumer, {stream: ">"}, count=count, block=block_ms)
        entries = [e for _, batch in fresh for e in batch]
    return entries
