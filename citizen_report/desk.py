"""What citizen reporting works with, built once per process: the store, the areas, the audit log,
its limits, the clock and the text templates. Every function of the package takes it first."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

import jinja2
import redis.asyncio as aioredis

from citizen_report.model import ReportConfig
from foundation.access.audit import AuditLog
from foundation.areas.registry import AreaRegistry
from foundation.i18n import Catalogs
from foundation.settings import Settings
from foundation.store import keys
from foundation.store.batched_script import BatchedScript
from foundation.store.id_blocks import IdBlocks


class Stamp(NamedTuple):
    at: datetime  # in the city's time zone, whole seconds
    iso: str  # ISO 8601
    epoch: int  # seconds


@dataclass
class ReportDesk:
    settings: Settings
    redis: aioredis.Redis
    registry: AreaRegistry
    catalogs: Catalogs
    audit: AuditLog
    text_env: jinja2.Environment  # renders templates/report/*.txt for reporters
    clock: Callable[[], datetime] | None = None
    config: ReportConfig = field(default_factory=ReportConfig)
    intake_script: BatchedScript | None = None  # concurrent submissions share round trips
    report_ids: IdBlocks | None = None
    # Told of each breach the monitoring consumer takes, before it is acknowledged (the threshold
    # plans, wired by the composition root): the queue entry id and its fields.
    on_breach: list[Callable[[str, dict[str, str]], Awaitable[None]]] = field(default_factory=list)
    _last: Stamp = field(default_factory=lambda: Stamp(datetime.min, "", 0), init=False, repr=False)

    async def next_report_id(self) -> str:
        if self.report_ids is None:
            self.report_ids = IdBlocks(self.redis, keys.REPORT_SEQUENCE)
        return str(await self.report_ids.next())

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.tz

    def now(self) -> datetime:
        return self.stamp().at

    def stamp(self) -> Stamp:
        """The current second, made once per second: every report needs it in three forms."""
        if self.clock:
            current = self.clock().astimezone(self.tz).replace(microsecond=0)
            return Stamp(current, current.isoformat(), int(current.timestamp()))
        second = int(time.time())
        if second != self._last.epoch:
            current = datetime.fromtimestamp(second, self.tz)
            self._last = Stamp(current, current.isoformat(), second)
        return self._last
