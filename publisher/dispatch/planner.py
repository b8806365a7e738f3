"""The planner: turns each publication (or expiry) into segments of recipients on the queue.

It consumes the warnings events stream through a consumer group, so each event is planned once
however many processes run a planner, and an event whose planner died is planned again (sending
stays exactly-once because each recipient is claimed per warning version before sending).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

from foundation.store import keys
from foundation.store.scripts import script
from foundation.store.streams import as_fields, ensure_group, next_entries
from publisher import coverage
from publisher.dispatch.channel import Channel
from publisher.dispatch.context import DispatchContext
from publisher.dispatch.jobs import SEGMENT_SIZE, SHARDS, Segment, chunks
from publisher.dispatch.retention import retain_thread
from publisher.model import Message, message_kind
from publisher.policy import PUSH_CHANNELS, grades_for

log = logging.getLogger(__name__)
T = TypeVar("T")

# The union of a few index sets in one hash slot, or their total size when that is over ARGV[1]
# (the caller then scans them: no single reply holds a huge set).
UNION = script("planner_union")
UNION_LIMIT = 200_000


def affected_areas(ctx: DispatchContext, message: Message) -> set[str]:
    """Areas whose subscribers a message concerns (see `publisher.coverage.affected_areas`)."""
    return coverage.affected_areas(message.content, ctx.registry)


def _growing_batches(items: list[T], largest: int = 32) -> Iterator[list[T]]:
    """1, 2, 4, ... items at a time up to `largest`: a quick start, then few round trips."""
    size, start = 1, 0
    while start < len(items):
        yield items[start : start + size]
        start += size
        size = min(largest, size * 2)


class Planner:
    def __init__(self, ctx: DispatchContext, consumer: str, *, union_limit: int = UNION_LIMIT) -> None:
        self.ctx = ctx
        self.redis = ctx.redis
        self.consumer = consumer
        self.union_limit = union_limit

    async def run(self) -> None:
        await ensure_group(self.redis, keys.WARNINGS_EVENTS, keys.PLANNER_GROUP)
        while True:
            await self.run_once(block_ms=1000)

    async def run_once(self, block_ms: int | None = None) -> int:
        """Plan pending events (our own unacknowledged ones first, then new ones)."""
        done = 0
        entries = await next_entries(
            self.redis,
            keys.WARNINGS_EVENTS,
            keys.PLANNER_GROUP,
            self.consumer,
            reclaim_after=self.ctx.settings.dispatch_reclaim_after,
            count=10,
            block_ms=block_ms,
            own_pending=True,
        )
        for entry_id, fields in entries:
            if fields:
                await self.plan_event(fields, published_ms=int(entry_id.split("-")[0]))
            await self.redis.xack(keys.WARNINGS_EVENTS, keys.PLANNER_GROUP, entry_id)
            done += 1
        return done

    async def plan_event(self, event: dict[str, str], published_ms: int) -> None:
        """`published_ms`: when the event was written (its stream id), the start of every timing."""
        message = await self.ctx.warnings.get(event["id"])
        if event["type"] == "published":
            await self.plan(message, kind=message_kind(message.msg_type), published_ms=published_ms)
        elif event["type"] == "expired" and message.content.grade in ("orange", "red"):
            await self.plan(message, kind="expired", published_ms=published_ms)
        else:  # nothing to send, but the thread's delivery records now end with it
            await retain_thread(self.ctx, message.thread)

    async def plan(self, message: Message, *, kind: str, published_ms: int) -> dict[str, int]:
        started = time.perf_counter()
        ctx = self.ctx
        await ctx.registry.refresh(self.redis)
        policy = await ctx.policy.get()
        plan_id = message.id if kind != "expired" else f"{message.id}:expired"
        counts: dict[str, int] = {}
        for channel in PUSH_CHANNELS:
            earlier = (
                await self._earlier_recipients(message.thread, channel)
                if message.msg_type != "Alert" or kind == "expired"
                else set()
            )
            await self._enqueue(plan_id, channel, kind, list(earlier), earlier=True)
            fresh = 0
            if kind in ("alert", "update"):
                batches = self._by_area(message, channel, policy[message.content.grade][channel])
                fresh = await self._enqueue_as_found(plan_id, channel, kind, batches, exclude=earlier)
            counts[channel] = len(earlier) + fresh
        if kind != "expired":  # systems (partners) get alerts, updates and cancels; the CAP says when it ends
            for own in (ch for ch in self.ctx.channels.values() if not ch.subscriber_channel):
                counts[own.name] = await self._plan_own_recipients(own, message, kind, plan_id)
        stats = {f"{ch}.planned": str(n) for ch, n in counts.items()}
        await self.redis.hset(
            keys.delivery_stats(plan_id), mapping=as_fields({**stats, "published_at": str(published_ms), "kind": kind})
        )
        # The city's record of this plan (publisher/record.py): kept when the stats expire.
        await self.redis.hset(
            keys.delivery_record(plan_id), mapping=as_fields({**stats, "published_at": str(published_ms), "kind": kind})
        )
        await self.redis.hset(
            keys.plan(plan_id),
            mapping=as_fields({"done": "1", **stats, "seconds": f"{time.perf_counter() - started:.3f}"}),
        )
        await retain_thread(ctx, message.thread)  # this plan's records, and the thread's, live as long as it
        log.info("planned %s (%s): %s in %.2fs", message.id, kind, counts, time.perf_counter() - started)
        return counts

    async def _plan_own_recipients(self, channel: Channel, message: Message, kind: str, plan_id: str) -> int:
        """A channel that keeps its own recipients (partner systems) says whom the message concerns;
        those that received an earlier version of it hear of this one too."""
        earlier = await self._earlier_recipients(message.thread, channel.name) if message.msg_type != "Alert" else set()
        fresh = set(await channel.recipients(message, affected_areas(self.ctx, message))) - earlier
        await self._enqueue(plan_id, channel.name, kind, list(earlier), earlier=True)
        await self._enqueue(plan_id, channel.name, kind, list(fresh), earlier=False)
        return len(earlier) + len(fresh)

    async def _by_area(self, message: Message, channel: str, mode: str) -> AsyncIterator[set[str]]:
        if mode == "off":
            return
        areas = affected_areas(self.ctx, message)
        if message.content.is_drill:
            index_keys = [keys.area_drill_subscribers(a, channel) for a in areas]
        else:
            index_keys = [
                keys.area_subscribers(a, channel, g) for a in areas for g in grades_for(mode, message.content.grade)
            ]
        async for members in self._scan_sets(index_keys):
            yield members

    async def _earlier_recipients(self, thread_id: str, channel: str) -> set[str]:
        found: set[str] = set()
        async for members in self._scan_sets([keys.thread_recipients(thread_id, channel, s) for s in range(SHARDS)]):
            found |= members
        return found

    async def _scan_sets(self, set_keys: list[str]) -> AsyncIterator[set[str]]:
        """The members of index sets, as they are read: one script call per hash slot (an area's
        grade sets share one) returns their union; the first slots are read in small batches, so
        their recipients are on their way while the rest is read. A union too big for one reply
        is scanned."""
        by_slot: dict[str, list[str]] = defaultdict(list)
        for key in set_keys:
            by_slot[key[key.index("{") : key.index("}") + 1]].append(key)
        groups = list(by_slot.values())
        too_big: list[list[str]] = []
        for batch in _growing_batches(groups):
            replies = await UNION.many(self.redis, [(group, [self.union_limit]) for group in batch])
            members: set[str] = set()
            for group, reply in zip(batch, replies, strict=True):
                if isinstance(reply, list):
                    members.update(reply)
                else:
                    too_big.append(group)
            yield members
        for key in (k for group in too_big for k in group):
            members = set()
            async for member in self.redis.sscan_iter(key, count=10_000):
                members.add(member)
                if len(members) >= 50_000:
                    yield members
                    members = set()
            yield members

    async def _enqueue_as_found(
        self, plan_id: str, channel: str, kind: str, batches: AsyncIterator[set[str]], *, exclude: set[str]
    ) -> int:
        """Queue recipients in full segments as the index sets are read, each once (a resident may
        be in several of the sets). Returns how many were queued."""
        seen = set(exclude)
        pending: list[str] = []
        queued = 0
        async for members in batches:
            new = members - seen
            seen |= new
            pending.extend(new)
            full = len(pending) - len(pending) % SEGMENT_SIZE
            if full:
                await self._enqueue(plan_id, channel, kind, pending[:full], earlier=False)
                del pending[:full]
                queued += full
        await self._enqueue(plan_id, channel, kind, pending, earlier=False)
        return queued + len(pending)

    async def _enqueue(self, plan_id: str, channel: str, kind: str, addresses: list[str], *, earlier: bool) -> None:
        segments = chunks(addresses)
        for start in range(0, len(segments), 200):
            async with self.redis.pipeline(transaction=False) as pipe:
                for part in segments[start : start + 200]:
                    pipe.xadd(
                        keys.DISPATCH_QUEUE,
                        as_fields(Segment(plan_id, channel, kind, tuple(part), earlier=earlier).to_fields()),
                    )
                await pipe.execute()
            await asyncio.sleep(0)
