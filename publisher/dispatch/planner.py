"""The planner: turns each publication (or expiry) into segments of recipients on the queue.

It consumes the warnings events stream through a consumer group, so each event is planned once
however many processes run a planner, and an event whose planner died is planned again (sending
stays exactly-once because each recipient is claimed per warning version before sending).
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
from shapely.geometry import Point, Polygon

from channels.partners import partners_for

from .. import keys
from ..model import Message
from ..policy import PUSH_CHANNELS, grades_for
from ..services import Services
from .jobs import SHARDS, Segment, chunks
from .streams import ensure_group, next_entries

log = logging.getLogger(__name__)


def affected_areas(services: Services, message: Message) -> set[str]:
    """Areas whose subscribers a message concerns: the targets, everything under them and above
    them (a city-wide subscriber hears of a district warning), and areas a drawn shape touches."""
    registry = services.registry
    codes: set[str] = set()
    for code in message.content.areas:
        codes.add(code)
        codes.update(registry.descendants(code))
        codes.update(registry.ancestors(code))
    shapes = [Polygon([(lon, lat) for lat, lon in poly]) for poly in message.content.polygons]
    shapes += [Point(c.lon, c.lat).buffer(c.radius_km / 111.0) for c in message.content.circles]
    for shape in shapes:
        for area in registry.areas:
            if area.geometry.intersects(shape):
                codes.add(area.code)
    return codes


class Planner:
    def __init__(self, services: Services, consumer: str) -> None:
        self.services = services
        self.redis = services.redis
        self.consumer = consumer

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
            reclaim_after=self.services.settings.dispatch_reclaim_after,
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
        message = await self.services.warnings.get(event["id"])
        if event["type"] == "published":
            kind = {"Alert": "alert", "Update": "update", "Cancel": "cancel"}[message.msg_type]
            await self.plan(message, kind=kind, published_ms=published_ms)
        elif event["type"] == "expired" and message.content.grade in ("orange", "red"):
            await self.plan(message, kind="expired", published_ms=published_ms)

    async def plan(self, message: Message, *, kind: str, published_ms: int) -> dict[str, int]:
        started = time.perf_counter()
        services = self.services
        await services.registry.refresh(self.redis)
        policy = await services.policy.get()
        plan_id = message.id if kind != "expired" else f"{message.id}:expired"
        counts: dict[str, int] = {}
        for channel in PUSH_CHANNELS:
            earlier = (
                await self._earlier_recipients(message.thread, channel)
                if message.msg_type != "Alert" or kind == "expired"
                else set()
            )
            fresh: set[str] = set()
            if kind in ("alert", "update"):
                fresh = await self._by_area(message, channel, policy[message.content.grade][channel]) - earlier
            await self._enqueue(plan_id, channel, kind, list(earlier), earlier=True)
            await self._enqueue(plan_id, channel, kind, list(fresh), earlier=False)
            counts[channel] = len(earlier) + len(fresh)
        if kind != "expired":  # partner systems get alerts, updates and cancels; the CAP says when it ends
            counts["partner"] = await self._plan_partners(message, kind, plan_id)
        stats = {f"{ch}.planned": n for ch, n in counts.items()}
        await self.redis.hset(
            keys.delivery_stats(plan_id), mapping={**stats, "published_at": published_ms, "kind": kind}
        )
        await self.redis.hset(
            keys.plan(plan_id), mapping={"done": "1", **stats, "seconds": f"{time.perf_counter() - started:.3f}"}
        )
        log.info("planned %s (%s): %s in %.2fs", message.id, kind, counts, time.perf_counter() - started)
        return counts

    async def _plan_partners(self, message: Message, kind: str, plan_id: str) -> int:
        """Partners keep their own registry (channels.partners): those the message concerns by grade,
        area and drill flag, plus those that received an earlier version of it."""
        earlier = await self._earlier_recipients(message.thread, "partner") if message.msg_type != "Alert" else set()
        fresh = set(await partners_for(self.redis, message, affected_areas(self.services, message))) - earlier
        await self._enqueue(plan_id, "partner", kind, list(earlier), earlier=True)
        await self._enqueue(plan_id, "partner", kind, list(fresh), earlier=False)
        return len(earlier) + len(fresh)

    async def _by_area(self, message: Message, channel: str, mode: str) -> set[str]:
        if mode == "off":
            return set()
        areas = affected_areas(self.services, message)
        if message.content.is_drill:
            index_keys = [keys.area_drill_subscribers(a, channel) for a in areas]
        else:
            index_keys = [
                keys.area_subscribers(a, channel, g) for a in areas for g in grades_for(mode, message.content.grade)
            ]
        return await self._scan_sets(index_keys)

    async def _earlier_recipients(self, thread_id: str, channel: str) -> set[str]:
        return await self._scan_sets([keys.thread_recipients(thread_id, channel, s) for s in range(SHARDS)])

    async def _scan_sets(self, set_keys: list[str]) -> set[str]:
        """Union of index sets: ordinary ones read whole, a few at a time in one round trip; a
        very large one scanned so that no single reply holds it all."""
        found: set[str] = set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in set_keys:
                pipe.scard(key)
            sizes = await pipe.execute()
        whole = [k for k, n in zip(set_keys, sizes, strict=True) if 0 < n <= 200_000]
        for start in range(0, len(whole), 16):
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in whole[start : start + 16]:
                    pipe.smembers(key)
                for members in await pipe.execute():
                    found.update(members)
        for key in (k for k, n in zip(set_keys, sizes, strict=True) if n > 200_000):
            async for member in self.redis.sscan_iter(key, count=10_000):
                found.add(member)
        return found

    async def _enqueue(self, plan_id: str, channel: str, kind: str, addresses: list[str], *, earlier: bool) -> None:
        segments = chunks(addresses)
        for start in range(0, len(segments), 200):
            async with self.redis.pipeline(transaction=False) as pipe:
                for part in segments[start : start + 200]:
                    pipe.xadd(
                        keys.DISPATCH_QUEUE, Segment(plan_id, channel, kind, tuple(part), earlier=earlier).to_fields()
                    )
                await pipe.execute()
            await asyncio.sleep(0)
