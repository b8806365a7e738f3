"""How long a warning's delivery records live: while the warning is in force, and then
`WARNCAST_DELIVERY_RETENTION_DAYS` more.

A warning's delivery records are the planner's `plan` and `delivery_stats` of each version, the
per-recipient `delivery_state` shards of each version, and the `thread_recipients` shards that an
update, a cancellation or the expiry notice goes to (foundation/store/keys.py). Every write sets
their expiry from the thread (`keep_seconds`): its current expiry plus the retention while it is
in force, the retention alone once it has ended. When the planner handles a thread's event
(publication of a version, the end of validity) it sets the expiry of every record of the thread
again (`retain_thread`): so an update that extends the warning keeps its recipients for longer, and
a cancellation brings every record of the thread down to the retention at once. The dead letters of
the dispatch outlive their warning by the same retention (`drop_old_dead_letters`).

The warnings themselves (`warning`, `thread`) and the audit log are the public record: kept. So is
the city's record of each plan (`delivery_record`: when each channel first and last delivered, its
receipts; publisher/record.py), a few fields that outlive the statistics they summarise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import datetime

import redis.asyncio as aioredis

from foundation.settings import Settings
from foundation.store import keys
from foundation.store.streams import decoded
from publisher.dispatch.context import DispatchContext
from publisher.dispatch.jobs import SHARDS
from publisher.model import ACTIVE, Thread
from publisher.policy import PUSH_CHANNELS

DAY = 86400


def keep_seconds(thread: Thread, now: datetime, retention_days: int) -> int:
    """Seconds from `now` that the thread's delivery records must stay: until it ends (its expiry,
    while it is in force) and the retention after that."""
    left = 0.0
    if thread.status == ACTIVE and thread.expires:
        left = max(0.0, (datetime.fromisoformat(thread.expires) - now).total_seconds())
    return int(left) + retention_days * DAY


async def keep_seconds_of(ctx: DispatchContext, thread_id: str) -> int:
    """`keep_seconds` of a stored thread, by the workflow's clock."""
    return keep_seconds(await ctx.warnings.thread(thread_id), ctx.warnings.now(), ctx.settings.delivery_retention_days)


def retention_cutoff(settings: Settings) -> str:
    """The stream entry id before which entries are older than the retention (for XTRIM MINID)."""
    return str(int((time.time() - settings.delivery_retention_days * DAY) * 1000))


def delivery_keys(thread: Thread, channels: Iterable[str]) -> list[str]:
    """Every key a thread's delivery may have written (most of them may not exist)."""
    names = sorted(set(channels))
    found = [keys.thread_recipients(thread.id, ch, shard) for ch in names for shard in range(SHARDS)]
    for message_id in thread.published:
        for plan_id in (message_id, f"{message_id}:expired"):
            found += [keys.plan(plan_id), keys.delivery_stats(plan_id)]
            found += [keys.delivery_state(plan_id, ch, shard) for ch in names for shard in range(SHARDS)]
    return found


async def retain_thread(ctx: DispatchContext, thread_id: str) -> int:
    """Set the expiry of every delivery record of a thread from where it stands now (see the module
    docstring); once it has ended, also drop the dead letters older than the retention. Returns the
    seconds set."""
    thread = await ctx.warnings.thread(thread_id)
    seconds = keep_seconds(thread, ctx.warnings.now(), ctx.settings.delivery_retention_days)
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for key in delivery_keys(thread, {*PUSH_CHANNELS, *ctx.channels}):
            pipe.expire(key, seconds)  # a no-op where the key does not exist
        await pipe.execute()
    if thread.status != ACTIVE:
        await drop_old_dead_letters(ctx.redis, ctx.settings.delivery_retention_days)
    return seconds


async def drop_old_dead_letters(redis: aioredis.Redis, retention_days: int, batch: int = 1000) -> int:
    """Remove dead letters older than the retention (they are pushed at the head, so the oldest are at
    the tail). LREM of the exact entry, so a replay popping the tail meanwhile loses nothing."""
    cutoff_ms = (time.time() - retention_days * DAY) * 1000
    dropped = 0
    while True:
        tail = [decoded(raw) for raw in await redis.lrange(keys.DISPATCH_DEAD, -batch, -1)]
        old = []
        for raw in reversed(tail):  # oldest first
            if _at_ms(raw) >= cutoff_ms:
                break
            old.append(raw)
        if not old:
            return dropped
        async with redis.pipeline(transaction=False) as pipe:
            for raw in old:
                pipe.lrem(keys.DISPATCH_DEAD, -1, raw)
            dropped += sum(await pipe.execute())
        if len(old) < len(tail):
            return dropped


def _at_ms(raw: str) -> float:
    try:
        return float(json.loads(raw).get("at", 0))
    except (ValueError, AttributeError):
        return 0.0  # unreadable: nobody can replay it either
