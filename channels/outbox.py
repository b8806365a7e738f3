"""Outbox mode: a channel without provider credentials delivers into a Redis stream that the
console and the API show, with the same bookkeeping as a real send. Nothing is dropped silently:
an entry stays for the delivery retention (WARNCAST_DELIVERY_RETENTION_DAYS), like the rest of a
warning's delivery records."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import redis.asyncio as aioredis

from foundation.store import keys
from foundation.store.streams import decoded, entries
from publisher.dispatch.channel import Rendition, SendResult


class OutboxTransport:
    def __init__(self, redis: aioredis.Redis, channel: str, *, keep_days: int) -> None:
        self.redis = redis
        self.key = keys.outbox(channel)
        self.keep_ms = keep_days * 86_400_000

    async def send(self, address: str, rendition: Rendition, *, reference: str, reply_to: str = "") -> SendResult:
        entry_id = await self.redis.xadd(
            self.key,
            {
                "to": address,
                "text": rendition.text,
                "reference": reference,
                "units": str(rendition.units),
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                **({"reply_to": reply_to} if reply_to else {}),
            },
            minid=str(int(time.time() * 1000) - self.keep_ms),  # entries older than the retention go
            approximate=False,
        )
        return SendResult(provider_id=f"outbox-{decoded(entry_id)}", status="delivered")

    async def close(self) -> None:
        return None


async def read_outbox(redis: aioredis.Redis, channel: str, count: int = 100) -> list[dict[str, str]]:
    """The newest outbox entries, newest first."""
    newest = entries(await redis.xrevrange(keys.outbox(channel), count=count))
    return [{"id": entry_id, **fields} for entry_id, fields in newest]
