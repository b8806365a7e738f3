"""The city's record page (/console/record) over a seeded year: 1,000 warnings released through the
real workflow (create, submit, approvals; a third updated, a fifth lifted) on a clock spread over
the year, each with the delivery record the planner and workers keep, and 100,000 citizen reports
(stored, indexed, and counted into the year's record as the monitoring consumer does) grouped into
incidents triaged at known speeds. Then the page, one CSV and one warning's timeline are fetched
through the real app over HTTP. Goal: the page renders in under 1 s.

    .venv/bin/python benchmarks/record.py [--warnings 1000] [--reports 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from citizen_report.incidents import Incident  # noqa: E402
from citizen_report.model import CATEGORIES, Report  # noqa: E402
from citizen_report.record import count_report, count_triage  # noqa: E402
from foundation.access.audit import Actor  # noqa: E402
from foundation.areas.registry import store_areas  # noqa: E402
from foundation.settings import Settings  # noqa: E402
from foundation.store import keys  # noqa: E402
from foundation.store.connection import EmbeddedRedis  # noqa: E402
from publisher.model import PUBLISHED  # noqa: E402
from publisher.taxonomy import EVENTS, GRADES  # noqa: E402
from warncast.app_keys import SERVICES  # noqa: E402
from warncast.demo_city import demo_areas  # noqa: E402
from warncast.web.app import create_app  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from benchlib import communities_of, red_warning  # noqa: E402

DRAFTER = Actor("drafter", frozenset({"drafter"}))
APPROVER = Actor("approver", frozenset({"approver"}))
CHIEF = Actor("chief", frozenset({"chief"}))


class YearClock:
    """The app's clock, moved through the year as the history is written."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


async def seed_warnings(services: Any, clock: YearClock, year: int, count: int, rng: random.Random) -> list[str]:
    warnings, tz = services.warnings, services.settings.tz
    start, span = datetime(year, 1, 1, tzinfo=tz), 364 * 86400
    moments = sorted(rng.uniform(0, span) for _ in range(count))
    published: list[str] = []
    async with services.redis.pipeline(transaction=False) as records:
        for offset in moments:
            clock.now = start + timedelta(seconds=offset)
            body = red_warning(clock.now, area=rng.choice(["990100", "990101", "990102"]))
            body["grade"] = rng.choices(GRADES, weights=[40, 35, 18, 7])[0]
            body["event"] = rng.choice(list(EVENTS))
            draft = await warnings.create(DRAFTER, body)
            clock.now += timedelta(seconds=rng.randint(60, 900))  # drafting to the first approval
            await warnings.submit(DRAFTER, draft.id)
            message = await warnings.approve(APPROVER, draft.id)
            if message.state != PUBLISHED:
                clock.now += timedelta(seconds=rng.randint(10, 240))
                message = await warnings.approve(CHIEF, draft.id)
            versions = [message]
            if rng.random() < 0.3:
                clock.now += timedelta(minutes=rng.randint(20, 120))
                update = await warnings.update(
                    DRAFTER, message.id, {"expires": (clock.now + timedelta(hours=6)).isoformat()}
                )
                clock.now += timedelta(seconds=rng.randint(30, 400))
                for approver in (APPROVER, CHIEF):
                    update = await warnings.approve(approver, update.id)
                    if update.state == PUBLISHED:
                        break
                versions.append(update)
            if rng.random() < 0.2:
                clock.now += timedelta(minutes=rng.randint(30, 180))
                cancel = await warnings.cancel(DRAFTER, versions[-1].id, "over")
                for approver in (APPROVER, CHIEF):
                    cancel = await warnings.approve(approver, cancel.id)
                    if cancel.state == PUBLISHED:
                        break
                versions.append(cancel)
            for version in versions:  # what the planner and the workers write for each plan
                published_ms = int(datetime.fromisoformat(version.sent or "").timestamp() * 1000)
                fields: dict[str, int | str] = {"published_at": published_ms, "kind": version.msg_type.lower()}
                for ch in ("sms", "telegram", "partner"):
                    first = rng.randint(30, 900)
                    fields |= {
                        f"{ch}.planned": rng.randint(100, 100_000),
                        f"{ch}.first_at": published_ms + first,
                        f"{ch}.last_at": published_ms + first + rng.randint(1_000, 900_000),
                    }
                records.hset(keys.delivery_record(version.id), mapping=fields)
            published.append(message.id)
        await records.execute()
    return published


async def seed_reports(services: Any, year: int, count: int, rng: random.Random) -> None:
    redis, tz = services.redis, services.settings.tz
    communities, categories = communities_of(services.registry), list(CATEGORIES)
    start = datetime(year, 1, 1, tzinfo=tz)
    batch = 2000
    for first in range(0, count, batch):
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(first, min(count, first + batch)):
                created = start + timedelta(seconds=rng.uniform(0, 364 * 86400))
                stamp = created.isoformat()
                report = Report(
                    id=str(n + 1),
                    tracking_code=f"{n:016d}",
                    category=rng.choice(categories),
                    description="Water knee deep at the underpass",
                    lat=30.66,
                    lon=121.06,
                    area=rng.choice(communities),
                    address="",
                    location_source="device",
                    photos=[],
                    channel="web",
                    reply_channel="web",
                    reply_address="",
                    contact={},
                    locale="zh_Hans",
                    life_safety=False,
                    created=stamp,
                    updated=stamp,
                    incident=f"R{n - n % 3 + 1}",  # three reports per incident
                )
                pipe.set(keys.report(report.id), json.dumps(report.as_record(), ensure_ascii=False))
                pipe.zadd(keys.REPORTS_INDEX, {report.id: created.timestamp()})
                count_report(pipe, report, tz)
                if n % 3:
                    continue
                priority = rng.choices([1, 2, 3, 4], weights=[5, 20, 50, 25])[0]
                deadline = created + timedelta(minutes=services.reports.config.deadline_for(priority))
                incident = Incident(
                    id=f"R{n + 1}",
                    kind="reports",
                    category=report.category,
                    title="",
                    lat=30.66,
                    lon=121.06,
                    area=report.area,
                    created=stamp,
                    updated=stamp,
                    deadline=deadline.isoformat(),
                    priority=priority,
                    reports=[str(n + 1), str(n + 2), str(n + 3)],
                    status="resolved",
                )
                pipe.set(keys.incident(incident.id), json.dumps(incident.as_json(), ensure_ascii=False))
                acted = created + timedelta(minutes=rng.expovariate(1 / 40))
                resolved = acted + timedelta(minutes=rng.expovariate(1 / 600))
                count_triage(pipe, stamp, deadline.isoformat(), priority, "received", "verified", acted, tz)
                count_triage(pipe, stamp, deadline.isoformat(), priority, "verified", "resolved", resolved, tz)
            await pipe.execute()


async def timed_get(client: TestClient, path: str, headers: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    resp = await client.get(path, headers=headers)
    body = await resp.read()
    assert resp.status == 200, body[:500]
    return time.perf_counter() - started, len(body)


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="wc-record-"))
    server = EmbeddedRedis(workdir / "redis", fsync="everysec")
    server.start()
    rng = random.Random(15)
    year = datetime.now().year - 1  # a whole year, all of it past
    try:
        settings = Settings(
            redis_url=server.url,
            data_dir=workdir,
            secret_key="bench",
            log_json=False,
            run_scheduler=False,
            run_workers=False,
        )
        clock = YearClock(datetime(year, 1, 1, tzinfo=settings.tz))
        async with TestClient(TestServer(create_app(settings, clock=clock))) as client:
            services = client.app[SERVICES]
            await store_areas(services.redis, demo_areas())
            await services.registry.refresh(services.redis)
            token = await services.accounts.create_token("bench-chief", ["chief"])
            headers = {"Authorization": f"Bearer {token}", "Accept-Language": "zh-CN"}
            started = time.perf_counter()
            ids = await seed_warnings(services, clock, year, args.warnings, rng)
            seeded_warnings = time.perf_counter() - started
            started = time.perf_counter()
            await seed_reports(services, year, args.reports, rng)
            seeded_reports = time.perf_counter() - started
            messages = await services.redis.zcard(keys.WARNINGS_INDEX)
            print(
                f"seeded {year}: {args.warnings:,} warnings ({messages:,} messages) through the workflow in "
                f"{seeded_warnings:.1f} s; {args.reports:,} reports in {seeded_reports:.1f} s"
            )
            # The first view compiles the templates and summarises the year's published messages
            # once (publisher/record.py); every later view reads the summaries.
            cold = await timed_get(client, f"/console/record?year={year}", headers)
            pages = [await timed_get(client, f"/console/record?year={year}", headers) for _ in range(args.rounds)]
            csvs = [
                await timed_get(client, f"/console/record?year={year}&format=csv&table=warnings", headers)
                for _ in range(args.rounds)
            ]
            timelines = [
                await timed_get(client, f"/console/record/warnings/{rng.choice(ids)}", headers)
                for _ in range(args.rounds)
            ]
    finally:
        server.stop()
    page_s = statistics.median(s for s, _ in pages)
    print(
        f"record page: median {page_s * 1000:.0f} ms, slowest {max(s for s, _ in pages) * 1000:.0f} ms "
        f"of {args.rounds} ({pages[0][1]:,} bytes) (goal < 1 s): {'met' if max(s for s, _ in pages) < 1 else 'MISSED'}"
    )
    print(f"first view (summarising the year's messages): {cold[0] * 1000:.0f} ms")
    csv_ms = statistics.median(s for s, _ in csvs) * 1000
    print(f"CSV of the year's warnings: median {csv_ms:.0f} ms ({csvs[0][1]:,} bytes)")
    print(f"one warning's timeline: median {statistics.median(s for s, _ in timelines) * 1000:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warnings", type=int, default=1000)
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
