"""What citizen reporting keeps per process: its limits, the clock and the text templates."""

from __future__ import annotations

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

    def now(self) -> datetime:
        current = self.clock() if self.clock else datetime.now(self.tz)
        return current.astimezone(self.tz).replace(microsecond=0)
