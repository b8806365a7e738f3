"""The city's record of citizen reports: how many, of what, where and when, and how fast the
monitoring centre acted on each incident and resolved it, against the incident's deadline.

A hundred thousand reports a year are too many to read for one page, so the record is written as it
happens, into one small hash per year (`keys.report_record`): the monitoring consumer counts a report
in the same transaction that absorbs it into an incident (once, however often the queue item comes),
and a triage action adds its time to a histogram in the transaction that applies it. Fields:
`category:{code}`, `area:{code}`, `hour:{0..23}`, `month:{1..12}` (reports), and per stage
(`acted`: the first triage step out of "received"; `resolved`) and incident priority
`{stage}:{priority}:{minutes}` (how many took that long, in whole minutes; hours beyond a day, days
beyond a month) and `{stage}:{priority}:late` (how many of them passed their deadline). The year is
the report's, or the incident's, in the city's time zone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from citizen_report.model import DUPLICATE, RECEIVED, REJECTED, RESOLVED, Report
from foundation.figures import Timing, percentile_of_counts
from foundation.i18n import N_
from foundation.store import keys
from foundation.store.streams import decoded_hash

STAGES = ("acted", "resolved")
STAGE_NAMES = {"acted": N_("First action (verify, assign or reject)"), "resolved": N_("Resolved")}
PRIORITIES = (1, 2, 3, 4)
DAY_MINUTES, MONTH_MINUTES = 24 * 60, 30 * 24 * 60


@dataclass
class ReportRecord:
    year: int
    total: int
    by_category: dict[str, int]  # most first
    by_area: dict[str, int]  # area code ("" unknown) -> reports, most first
    by_hour: list[int]  # 24 counts, local time
    by_month: list[int]  # 12 counts
    triage: dict[str, dict[int, Timing]]  # stage -> priority -> minutes (within: by the deadline)


def _bucket(minutes: int) -> int:
    """Exact minutes for a day, then whole hours for a month, then whole days: a bounded hash."""
    if minutes < DAY_MINUTES:
        return minutes
    if minutes < MONTH_MINUTES:
        return minutes - minutes % 60
    return minutes - minutes % DAY_MINUTES


def count_report(pipe: Any, report: Report, tz: ZoneInfo) -> None:
    """Count a report in its year's record (inside the transaction that absorbs it)."""
    at = datetime.fromisoformat(report.created).astimezone(tz)
    key = keys.report_record(at.year)
    for name in (f"category:{report.category}", f"area:{report.area or ''}", f"hour:{at.hour}", f"month:{at.month}"):
        pipe.hincrby(key, name, 1)


def count_triage(
    pipe: Any, created_at: str, deadline: str, priority: int, before: str, status: str, now: datetime, tz: ZoneInfo
) -> None:
    """Add an incident's action to the record (inside the transaction that applies it): its first
    step out of "received" and its resolution, each once per incident; `created_at` and `deadline`
    are the incident's."""
    stages = []
    if before == RECEIVED and status not in (RECEIVED, DUPLICATE):
        stages.append("acted")
    if status == RESOLVED and before not in (RESOLVED, REJECTED):
        stages.append("resolved")
    if not stages:
        return
    created = datetime.fromisoformat(created_at)
    minutes = _bucket(max(0, int((now - created).total_seconds() // 60)))
    late = bool(deadline) and now > datetime.fromisoformat(deadline)
    key = keys.report_record(created.astimezone(tz).year)
    for stage in stages:
        pipe.hincrby(key, f"{stage}:{priority}:{minutes}", 1)
        if late:
            pipe.hincrby(key, f"{stage}:{priority}:late", 1)


async def report_record(redis: aioredis.Redis, year: int) -> ReportRecord:
    raw = decoded_hash(await redis.hgetall(keys.report_record(year)))
    categories: dict[str, int] = {}
    areas: dict[str, int] = {}
    hours, months = [0] * 24, [0] * 12
    histograms: dict[tuple[str, int], dict[int, int]] = defaultdict(dict)
    late: dict[tuple[str, int], int] = defaultdict(int)
    for name, value in raw.items():
        kind, _, rest = name.partition(":")
        count = int(value)
        if kind == "category":
            categories[rest] = count
        elif kind == "area":
            areas[rest] = count
        elif kind == "hour":
            hours[int(rest)] = count
        elif kind == "month":
            months[int(rest) - 1] = count
        elif kind in STAGES:
            grade, _, minutes = rest.partition(":")  # the incident's priority
            if minutes == "late":
                late[(kind, int(grade))] = count
            else:
                histograms[(kind, int(grade))][int(minutes)] = count
    triage: dict[str, dict[int, Timing]] = {}
    for stage in STAGES:
        triage[stage] = {}
        for priority in PRIORITIES:
            counts = histograms.get((stage, priority), {})
            total = sum(counts.values())
            triage[stage][priority] = Timing(
                total,
                percentile_of_counts(counts, 50),
                percentile_of_counts(counts, 95),
                total - late.get((stage, priority), 0),
            )
    return ReportRecord(
        year=year,
        total=sum(categories.values()),
        by_category=dict(sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))),
        by_area=dict(sorted(areas.items(), key=lambda kv: (-kv[1], kv[0]))),
        by_hour=hours,
        by_month=months,
        triage=triage,
    )
