"""What citizen reporting keeps per process: its limits, the clock and the text templates."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import jinja2

from publisher.batched_script import BatchedScript

from .model import ReportConfig


@dataclass
class ReportDesk:
    tz: ZoneInfo
    text_env: jinja2.Environment  # renders templates/report/*.txt for reporters
    clock: Callable[[], datetime] | None = None
    config: ReportConfig = field(default_factory=ReportConfig)
    intake_script: BatchedScript | None = None  # concurrent submissions share round trips
    _second: tuple[int, datetime, str] = field(default=(0, datetime.min, ""), init=False, repr=False)

    def now(self) -> datetime:
        return self.stamp()[0]

    def stamp(self) -> tuple[datetime, str]:
        """The current second and its ISO 8601 text (made once per second: every report needs both)."""
        if self.clock:
            current = self.clock().astimezone(self.tz).replace(microsecond=0)
            return current, current.isoformat()
        second = int(time.time())
        if second != self._second[0]:
            current = datetime.fromtimestamp(second, self.tz)
            self._second = (second, current, current.isoformat())
        return self._second[1], self._second[2]
