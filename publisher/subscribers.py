"""Residents who receive warnings: one record per (channel, address), indexed by area.

A subscriber is `active` only after a confirmed opt-in (SMS double opt-in; a Telegram chat opts in
by itself). `stopped` is honoured for every later warning until the resident sends START again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis.asyncio as aioredis

from foundation.areas.registry import Area, AreaRegistry
from foundation.phones import PhoneError, normalize_phone
from foundation.store import keys
from foundation.store.durable import durable_all
from foundation.store.raw_pipeline import execute_raw
from foundation.store.streams import as_fields, decoded_hash
from publisher.policy import DEFAULT_MIN_GRADE
from publisher.taxonomy import GRADES

CHANNELS = ("sms", "telegram")
_DISPATCH_FIELDS = ("status", "lang", "min_grade", "drill")
PENDING, ACTIVE, STOPPED = "pending", "active", "stopped"

LANGS = ("zh_Hans", "en")


class SubscriberError(ValueError):
    """A subscription request that cannot be carried out (unknown area, bad number, ...)."""


def normalize_address(channel: str, raw: str) -> str:
    """The address as it is kept (a phone number in E.164, a chat id), or SubscriberError."""
    if channel == "sms":
        try:
            return normalize_phone(raw)
        except PhoneError as exc:
            raise SubscriberError(str(exc)) from exc
    if channel == "telegram" and re.fullmatch(r"-?\d{1,20}", raw.strip()):
        return raw.strip()
    raise SubscriberError(f"not a {channel} address: {raw[:40]!r}")


@dataclass
class Subscriber:
    channel: str
    address: str
    status: str = PENDING
    areas: list[str] = field(default_factory=list)
    lang: str = "zh_Hans"
    min_grade: str = ""  # "" until set: the channel's default (see policy.DEFAULT_MIN_GRADE)
    drill: bool = False
    pending_area: str = ""
    source: str = ""

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def __post_init__(self) -> None:
        self.min_grade = self.min_grade or DEFAULT_MIN_GRADE[self.channel]

    def wants(self, grade: str) -> bool:
        return GRADES.index(grade) >= GRADES.index(self.min_grade)

    def to_hash(self) -> dict[str, str]:
        return {
            "channel": self.channel,
            "address": self.address,
            "status": self.status,
            "areas": ",".join(self.areas),
            "lang": self.lang,
            "min_grade": self.min_grade,
            "drill": "1" if self.drill else "0",
            "pending_area": self.pending_area,
            "source": self.source,
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> Subscriber:
        return cls(
            channel=data["channel"],
            address=data["address"],
            status=data.get("status", PENDING),
            areas=[a for a in data.get("areas", "").split(",") if a],
            lang=data.get("lang", "zh_Hans"),
            min_grade=data.get("min_grade", ""),
            drill=data.get("drill") == "1",
            pending_area=data.get("pending_area", ""),
            source=data.get("source", ""),
        )


def find_area(registry: AreaRegistry, text: str) -> Area | None:
    """An area by code or by name in either language, ignoring case and common suffixes."""
    query = text.strip()
    if not query:
        return None
    if area := registry.get(query):
        return area
    folded = _fold(query)
    for area in registry.areas:
        if any(_fold(name) == folded for name in area.name.values()):
            return area
    return None


_SUFFIXES = re.compile(r"(社区|村|街道|镇|区|市|community|village|subdistrict|town|district|city)$")


def _fold(name: str) -> str:
    folded = re.sub(r"\s+", "", name.lower())
    return _SUFFIXES.sub("", folded) or folded


class Subscribers:
    def __init__(self, redis: aioredis.Redis, min_replicas: int | None = 0) -> None:
        self.redis = redis
        self.min_replicas = min_replicas  # replicas a confirmed subscription waits for (durable)

    async def get(self, channel: str, address: str) -> Subscriber | None:
        data = await self.redis.hgetall(keys.subscriber(channel, address))
        return Subscriber.from_hash(decoded_hash(data)) if data else None

    async def get_many(self, channel: str, addresses: list[str]) -> list[Subscriber | None]:
        """What dispatch needs of many subscribers, in one round trip (only the fields it reads:
        this is the hot path of a million-recipient fan-out)."""
        rows = await execute_raw(
            self.redis, [("HMGET", keys.subscriber(channel, address), *_DISPATCH_FIELDS) for address in addresses]
        )
        return [
            Subscriber(
                channel, address, status=row[0], lang=row[1] or "zh_Hans", min_grade=row[2] or "", drill=row[3] == "1"
            )
            if row[0]
            else None
            for address, row in zip(addresses, rows, strict=True)
        ]

    async def save(self, sub: Subscriber, *, before: Subscriber | None = None) -> Subscriber:
        """Store the record and move its index entries from what it was to what it is."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.subscriber(sub.channel, sub.address), mapping=as_fields(sub.to_hash()))
            if before is not None:
                _unindex(pipe, before)
            if sub.active:
                _index(pipe, sub)
            await pipe.execute()
        return sub

    async def update(self, channel: str, address: str, **changes: object) -> Subscriber:
        before = await self.get(channel, address) or Subscriber(channel, address)
        after = Subscriber(**{**before.__dict__, **changes})
        return await self.save(after, before=before)

    async def request(self, channel: str, address: str, area: str, lang: str) -> Subscriber:
        """SMS JOIN: remember the area until the resident confirms with YES."""
        return await self.update(channel, address, pending_area=area, lang=lang, source=channel)

    async def confirm(self, channel: str, address: str) -> Subscriber | None:
        sub = await self.get(channel, address)
        if sub is None or not sub.pending_area:
            return None
        areas = sub.areas if sub.pending_area in sub.areas else [*sub.areas, sub.pending_area]
        confirmed = await self.update(channel, address, areas=areas, pending_area="", status=ACTIVE)
        await self.replicated(confirmed)
        return confirmed

    async def subscribe(
        self, channel: str, address: str, area: str, *, lang: str | None = None, source: str = "", wait: bool = True
    ) -> Subscriber:
        """A confirmed subscription (a chat that asked itself, or an imported opted-in base); `wait`:
        return once it is on the replicas (an import waits once for all its rows, `replicated`)."""
        before = await self.get(channel, address)
        sub = before or Subscriber(channel, address, source=source or channel)
        areas = sub.areas if area in sub.areas else [*sub.areas, area]
        after = Subscriber(
            **{**sub.__dict__, "areas": areas, "status": ACTIVE, "lang": lang or sub.lang, "pending_area": ""}
        )
        saved = await self.save(after, before=before)
        if wait:
            await self.replicated(saved)
        return saved

    async def replicated(self, *subs: Subscriber) -> None:
        """Return once these records and their area indexes are on the replicas (on a cluster, of
        every primary that holds one); `Unavailable` (503) when they are not in time."""
        written = [keys.subscriber(sub.channel, sub.address) for sub in subs]
        written += [keys.area_subscribers(area, sub.channel, sub.min_grade) for sub in subs for area in sub.areas]
        await durable_all(self.redis, self.min_replicas, written)

    async def stop(self, channel: str, address: str) -> Subscriber:
        """STOP is the resident's withdrawn consent: acknowledged only once it would survive a failover."""
        stopped = await self.update(channel, address, status=STOPPED, pending_area="")
        await self.replicated(stopped)
        return stopped

    async def start(self, channel: str, address: str) -> Subscriber | None:
        sub = await self.get(channel, address)
        if sub is None or not sub.areas:
            return None
        return await self.update(channel, address, status=ACTIVE)

    async def count_active(
        self, area_codes: Iterable[str], channel: str, grades: Iterable[str], drill: bool = False
    ) -> int:
        """Reach estimate: index entries over the given areas (a resident in two areas counts twice)."""
        grades = list(grades)
        async with self.redis.pipeline(transaction=False) as pipe:
            for code in area_codes:
                if drill:
                    pipe.scard(keys.area_drill_subscribers(code, channel))
                else:
                    for grade in grades:
                        pipe.scard(keys.area_subscribers(code, channel, grade))
            return sum(await pipe.execute())


def _index(pipe: aioredis.client.Pipeline, sub: Subscriber) -> None:
    for area in sub.areas:
        pipe.sadd(keys.area_subscribers(area, sub.channel, sub.min_grade), sub.address)
        if sub.drill:
            pipe.sadd(keys.area_drill_subscribers(area, sub.channel), sub.address)


def _unindex(pipe: aioredis.client.Pipeline, sub: Subscriber) -> None:
    for area in sub.areas:
        pipe.srem(keys.area_subscribers(area, sub.channel, sub.min_grade), sub.address)
        pipe.srem(keys.area_drill_subscribers(area, sub.channel), sub.address)
