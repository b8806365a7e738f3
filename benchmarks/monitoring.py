"""The monitoring consumer: how fast citizen reports become triage-board incidents, against how fast
the same process takes them in.

    .venv/bin/python benchmarks/monitoring.py [--reports 5000] [--rounds 3] [--fsync always|everysec]

Each round, in one process on the embedded redis-server with the demo city loaded (areas, units,
routing): `--reports` reports go through `submit_report` (100 at a time, each from its own address,
as the API takes them), then `queue.drain` turns them into incidents with the consumer's own code.
A third of the reports are filed within 100 m of an earlier one of the same category, so they
corroborate it (the consumer's slower path: a candidate incident read and rewritten); the rest
are spread over the city. Printed: reports per second and CPU time per report of each, and the
ratio consumer / intake (1.0: one process's consumer keeps up with what one process takes in).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from citizen_report import queue  # noqa: E402
from citizen_report.intake import submit_report  # noqa: E402
from citizen_report.model import ReportConfig, ReportInput  # noqa: E402
from foundation import loops  # noqa: E402
from foundation.settings import Settings  # noqa: E402
from foundation.store import keys  # noqa: E402
from foundation.store.connection import open_redis  # noqa: E402
from warncast.demo import load_demo  # noqa: E402
from warncast.services import Services  # noqa: E402

CATEGORIES = ("waterlogging", "fallen_tree", "road_damage", "power_line")


def spots(count: int, rng: random.Random) -> list[tuple[str, float, float]]:
    """(category, lat, lon) of each report: a third near an earlier one (within about 100 m)."""
    out: list[tuple[str, float, float]] = []
    for _ in range(count):
        if out and rng.random() < 1 / 3:
            category, lat, lon = rng.choice(out)
            out.append((category, lat + rng.uniform(-0.0006, 0.0006), lon + rng.uniform(-0.0006, 0.0006)))
        else:
            out.append((rng.choice(CATEGORIES), rng.uniform(30.60, 30.80), rng.uniform(120.90, 121.20)))
    return out


async def one_round(reports: int, fsync: str, seed: int) -> tuple[float, float, float, float, int]:
    """(intake/s, intake CPU ms per report, consumer/s, consumer CPU ms per report, incidents)."""
    with tempfile.TemporaryDirectory(prefix="wc-monitoring-") as tmp:
        settings = Settings(secret_key="b" * 64, data_dir=Path(tmp), redis_fsync=fsync)
        async with open_redis(settings) as redis:
            services = await Services.build(settings, redis)
            await load_demo(services)
            desk = services.reports
            await queue.drain(desk)  # the demo's own items
            desk.config = ReportConfig(per_ip=(10**9, 60), per_sender=(10**9, 60))
            todo = spots(reports, random.Random(seed))

            async def submit(i: int) -> None:
                category, lat, lon = todo[i]
                data = ReportInput(
                    category=category,
                    description="Benchmark report, water over the kerb",
                    lat=round(lat, 6),
                    lon=round(lon, 6),
                    channel="api",
                    client=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                )
                await submit_report(desk, data)

            wall, cpu = time.perf_counter(), time.process_time()
            for start in range(0, reports, 100):
                await asyncio.gather(*(submit(i) for i in range(start, min(start + 100, reports))))
            intake_wall, intake_cpu = time.perf_counter() - wall, time.process_time() - cpu
            wall, cpu = time.perf_counter(), time.process_time()
            drained = await queue.drain(desk)
            drain_wall, drain_cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert drained == reports, f"drained {drained} of {reports}"
            incidents = await redis.zcard(keys.BOARD_INDEX)
    return (
        reports / intake_wall,
        intake_cpu / reports * 1000,
        reports / drain_wall,
        drain_cpu / reports * 1000,
        int(incidents),
    )


async def main(reports: int, rounds: int, fsync: str) -> None:
    print(f"monitoring consumer, appendfsync {fsync}: {reports} reports per round, {rounds} rounds, one process")
    results = []
    for n in range(rounds):
        intake, intake_ms, consumer, consumer_ms, incidents = await one_round(reports, fsync, seed=n)
        results.append((intake, consumer))
        print(
            f"  round {n + 1}: intake {intake:,.0f}/s ({intake_ms:.2f} ms CPU each), consumer {consumer:,.0f}/s "
            f"({consumer_ms:.2f} ms CPU each), {incidents:,} incidents; consumer / intake {consumer / intake:.2f}"
        )
    ratio = statistics.median(consumer / intake for intake, consumer in results)
    print(
        f"  median: intake {statistics.median(r[0] for r in results):,.0f}/s, consumer "
        f"{statistics.median(r[1] for r in results):,.0f}/s; consumer / intake {ratio:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fsync", choices=["always", "everysec"], default="always")
    args = parser.parse_args()
    loops.run(main(args.reports, args.rounds, args.fsync))
