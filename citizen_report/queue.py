"""The monitoring queue: one durable Redis stream of items the operations centre works from.

Items are citizen reports, threshold breaches and upstream CAP alerts (field `kind`). The consumer
group `keys.MONITORING_GROUP` turns each item into a triage-board entry (`incidents.absorb`) and
acknowledges it only after that is stored, so an item in flight when a process dies is still
pending and is claimed again by the next consumer: nothing is lost, and absorbing is idempotent.

Every `warncast serve` runs a consumer, but one works at a time: the holder of a lease it renews
each round and hands on when its process stops; the others stand by, and one takes over within
`LEASE_MS` of a holder that died. Reports of one category can join each other's incidents, so two
consumers at work would contend for the same keys: with two, a burst of one category was absorbed
slower than with one, and some batches gave up after 20 conflicts in a row (with four, slower
still).
"""

from __future__ import annotations

import asyncio
import logging
import time

from citizen_report.desk import ReportDesk
from citizen_report.incidents import absorb
from citizen_report.routing import RoutingForBatch
from foundation.store import keys
from foundation.store.scripts import script
from foundation.store.streams import Entry, entries, read_entries
from foundation.store.streams import ensure_group as ensure_stream_group

log = logging.getLogger(__name__)
CLAIM_IDLE_MS = 30_000  # an item unacknowledged this long belonged to a consumer that died
LEASE_MS = 10_000  # the consumer at work renews it every round (at most about 1 s apart)
_LEASE = script("consumer_lease")


async def ensure_group(desk: ReportDesk) -> None:
    await ensure_stream_group(desk.redis, keys.MONITORING_QUEUE, keys.MONITORING_GROUP)


async def consume(
    desk: ReportDesk, consumer: str, *, count: int = 100, block_ms: int | None = None, lease_ms: int = LEASE_MS
) -> int:
    """Absorb one batch: this consumer's own pending items, then stale ones of dead consumers, then
    new ones. Returns how many items were handled (0: nothing to do, or another consumer is at
    work; a consumer that stands by waits `block_ms` first)."""
    redis = desk.redis
    if not await _LEASE(redis, keys=[keys.MONITORING_LEASE], args=[consumer, lease_ms]):
        if block_ms:
            await asyncio.sleep(block_ms / 1000)
        return 0
    await ensure_group(desk)
    batch: list[Entry] = []
    for start in ("0", ">"):
        found = await redis.xreadgroup(
            keys.MONITORING_GROUP,
            consumer,
            {keys.MONITORING_QUEUE: start},
            count=count,
            block=block_ms if start == ">" else None,
        )
        batch = [entry for entry in read_entries(found) if entry[1]]
        if batch:
            break
        if start == "0":
            _next, claimed, *_ = await redis.xautoclaim(
                keys.MONITORING_QUEUE, keys.MONITORING_GROUP, consumer, CLAIM_IDLE_MS, count=count
            )
            batch = [entry for entry in entries(claimed) if entry and entry[1]]
            if batch:
                break
    absorbed: list[str] = []
    routing = RoutingForBatch(redis)
    try:
        for entry_id, fields in batch:
            await absorb(desk, entry_id, fields, routing)
            if fields.get("kind") == "breach":
                for listener in desk.on_breach:
                    await listener(entry_id, fields)
            absorbed.append(entry_id)
    finally:  # one acknowledgement for the items done, even when a later one failed
        if absorbed:
            await redis.xack(keys.MONITORING_QUEUE, keys.MONITORING_GROUP, *absorbed)
    if batch:  # the reports and incidents hold what the items said: items go after the retention
        cutoff = int((time.time() - desk.settings.delivery_retention_days * 86400) * 1000)
        await redis.xtrim(keys.MONITORING_QUEUE, minid=str(cutoff), approximate=False)
    return len(batch)


async def drain(desk: ReportDesk, consumer: str = "burst") -> int:
    """Absorb everything queued now (tests, the CLI, benchmarks): burst mode, no waiting; then give
    the lease back, for the consumers of running processes. 0 while another consumer is at work."""
    total = 0
    try:
        while handled := await consume(desk, consumer):
            total += handled
    finally:
        await give_up(desk, consumer)
    return total


async def give_up(desk: ReportDesk, consumer: str) -> None:
    """Hand the lease back if `consumer` holds it (a burst drained, a process stopping), so that a
    consumer standing by starts at its next round instead of when the lease lapses."""
    await _LEASE(desk.redis, keys=[keys.MONITORING_LEASE], args=[consumer, 0])


async def items(desk: ReportDesk, *, after: str = "-", limit: int = 100) -> list[dict[str, str]]:
    """Queue items in order, for machines that poll (`after` is the last entry id they saw)."""
    start = f"({after}" if after not in ("-", "") else "-"
    found = entries(await desk.redis.xrange(keys.MONITORING_QUEUE, min=start, max="+", count=limit))
    return [{"id": entry_id, **fields} for entry_id, fields in found]
