"""Citizen-report intake: throughput and latency against a bare aiohttp endpoint, and durability
when Redis is killed with SIGKILL mid-load.

    .venv/bin/python benchmarks/intake.py [--requests 10000] [--rounds 7] [--fsync always|everysec|both]

1. Throughput: the same load generator (this process, `--concurrency` connections, a fresh
   Idempotency-Key per post) posts the same JSON report to (a) a bare aiohttp app that reads the
   body, json-decodes it, checks that it is an object with a category and answers 201 with a JSON
   body of the same shape and size as warncast's plus a Location header, and (b) warncast's POST
   /api/v1/reports (middlewares, validation, idempotency key, rate limits, the atomic intake script
   on the embedded redis-server with the AOF on, the dispatch workers and the reporter notifier
   running as in `warncast serve`; each report's point is looked up in the demo city's areas). The
   monitoring-queue consumer that turns reports into triage incidents does not run: it works after
   the acknowledgement, and may run in any process. Each server runs in its own process on this
   machine. The two alternate for `--rounds` rounds, because this machine is shared and its load
   varies; each round's ratio compares two runs made moments apart, and the headline is the median
   of those ratios (the best run of each is printed too). Latencies are over all rounds.
   Target: warncast >= 50 % of the bare endpoint's requests/s, p99 < 100 ms at that load.
2. Durability: load runs while the redis-server is SIGKILLed and restarted; every report that was
   acknowledged (201) must be found afterwards. Target: 0 missing.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from foundation import loops  # noqa: E402
from foundation.store.connection import EmbeddedRedis  # noqa: E402

BODY = {"category": "waterlogging", "description": "Underpass flooded, benchmark", "lat": 30.666, "lon": 121.0625}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_bare(port: int) -> None:
    """The baseline: parse the request as warncast must, answer as warncast does, store nothing."""

    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or "category" not in body:
            raise web.HTTPUnprocessableEntity()
        code = secrets.token_hex(8).upper()
        now = datetime.now().astimezone().replace(microsecond=0).isoformat()
        answer = {
            "tracking_code": code,
            "id": "1",
            "category": body["category"],
            "status": "received",
            "status_note": "",
            "area": "990101001001",
            "created": now,
            "updated": now,
            "history": [{"status": "received", "at": now, "note": ""}],
            "status_url": f"http://localhost:8080/report/{code}",
            "api_url": f"http://localhost:8080/api/v1/reports/{code}",
        }
        response = web.json_response(answer, status=201)
        response.headers["Location"] = f"/api/v1/reports/{code}"
        return response

    app = web.Application()
    app.router.add_post("/api/v1/reports", handler)
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        print=None,
        handle_signals=True,
        access_log=None,
        loop=loops.new_event_loop(),  # the event loop `warncast serve` runs on
    )


def serve_warncast(port: int, redis_url: str, data_dir: str) -> None:
    import logging

    from citizen_report.model import ReportConfig
    from foundation.areas.registry import store_areas
    from foundation.settings import Settings
    from warncast.app_keys import SERVICES
    from warncast.demo_city import demo_areas
    from warncast.web.app import create_app

    settings = Settings(
        redis_url=redis_url,
        data_dir=Path(data_dir),
        secret_key="bench",
        run_scheduler=False,
        public_rate=1_000_000.0,  # one client machine sends everything (reads are limited per address)
        public_burst=1_000_000,
    )
    Path(data_dir).mkdir(parents=True, exist_ok=True)  # the errors while Redis is down go to a file, not here
    logging.basicConfig(filename=Path(data_dir) / "warncast.log", level=logging.WARNING)
    app = create_app(settings)

    async def city(app: web.Application) -> None:
        services = app[SERVICES]
        services.reports.config = ReportConfig(per_ip=(10**9, 60), per_sender=(10**9, 60))  # one client machine
        await store_areas(services.redis, demo_areas())  # each report's point is looked up in the city's areas
        await services.registry.refresh(services.redis)

    app.on_startup.append(city)
    web.run_app(
        app, host="127.0.0.1", port=port, print=None, handle_signals=True, access_log=None, loop=loops.new_event_loop()
    )


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url):
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


class Run(NamedTuple):
    rps: float
    latencies: list[float]  # seconds
    statuses: Counter[int]  # 0: no answer
    failures: Counter[str]  # why there was no answer


async def load(url: str, total: int, concurrency: int, acked: list[str] | None = None) -> Run:
    """Post `total` reports with `concurrency` clients."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    counter = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)

    async def worker(session: aiohttp.ClientSession) -> None:
        for _ in counter:
            started = time.perf_counter()
            status = 0
            try:
                async with session.post(url, json=BODY, headers={"Idempotency-Key": secrets.token_hex(12)}) as resp:
                    body = await resp.json(content_type=None)
                    status = resp.status
                    if resp.status == 201 and acked is not None:
                        acked.append(body["tracking_code"])
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                failures[f"{type(exc).__name__}: {exc}"[:120]] += 1
            statuses[status] += 1
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Run(total / elapsed, latencies, statuses, failures)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else 0.0


def start(target, *args) -> multiprocessing.Process:  # type: ignore[no-untyped-def]
    process = multiprocessing.Process(target=target, args=args, daemon=True)
    process.start()
    return process


def stop(process: multiprocessing.Process) -> None:
    os.kill(process.pid, signal.SIGINT)
    process.join(10)
    if process.is_alive():
        process.kill()


async def throughput(requests: int, concurrency: int, rounds: int, workdir: Path, fsync: str) -> float:
    """The rounds against an embedded server with `appendfsync <fsync>`; returns warncast's median req/s."""
    redis = EmbeddedRedis(workdir / f"redis-throughput-{fsync}", fsync=fsync)
    redis.start()
    bare_port, app_port = free_port(), free_port()
    bare = start(serve_bare, bare_port)
    app = start(serve_warncast, app_port, redis.url, str(workdir / f"data-throughput-{fsync}"))
    urls = {"bare aiohttp": bare_port, "warncast": app_port}
    try:
        for port in urls.values():
            await wait_up(f"http://127.0.0.1:{port}/")
            await load(f"http://127.0.0.1:{port}/api/v1/reports", min(500, requests), concurrency)  # warm up
        runs: dict[str, list[Run]] = {name: [] for name in urls}
        ratios: list[float] = []
        print(
            f"throughput, appendfsync {fsync}: {requests} JSON reports per round, {concurrency} concurrent clients, "
            f"{rounds} rounds"
        )
        for round_number in range(1, rounds + 1):
            # The two alternate, and each round's ratio compares runs made moments apart: this
            # machine is shared and its load varies from one second to the next.
            for name, port in urls.items():
                run = await load(f"http://127.0.0.1:{port}/api/v1/reports", requests, concurrency)
                if set(run.statuses) != {201}:
                    raise RuntimeError(f"{name} answered {dict(run.statuses)}, failures {dict(run.failures)}")
                runs[name].append(run)
            bare_rps, warncast_rps = runs["bare aiohttp"][-1].rps, runs["warncast"][-1].rps
            ratios.append(warncast_rps / bare_rps)
            print(
                f"  round {round_number}: bare {bare_rps:6.0f}, warncast {warncast_rps:6.0f} req/s = {ratios[-1]:.0%}"
            )
        for name, name_runs in runs.items():
            latencies = [latency for run in name_runs for latency in run.latencies]
            rps = statistics.median(run.rps for run in name_runs)
            p50, p99 = pct(latencies, 50), pct(latencies, 99)
            print(f"  {name:13s} median {rps:6.0f} req/s   p50 {p50:5.1f} ms   p99 {p99:5.1f} ms")
        best = max(run.rps for run in runs["warncast"]) / max(run.rps for run in runs["bare aiohttp"])
        p99 = pct([latency for run in runs["warncast"] for latency in run.latencies], 99)
        print(
            f"  ratio warncast / bare: median of rounds {statistics.median(ratios):.0%} (target >= 50%), "
            f"best against best {best:.0%}; warncast p99 {p99:.1f} ms over all rounds (target < 100 ms)"
        )
        return statistics.median(run.rps for run in runs["warncast"])
    finally:
        stop(bare)
        stop(app)
        redis.stop()


async def durability(requests: int, concurrency: int, workdir: Path) -> None:
    import redis as sync_redis

    from foundation.store import keys

    embedded = EmbeddedRedis(workdir / "redis-durability")
    embedded.start()
    port = free_port()
    app = start(serve_warncast, port, embedded.url, str(workdir / "data-durability"))
    acked: list[str] = []
    try:
        await wait_up(f"http://127.0.0.1:{port}/")
        url = f"http://127.0.0.1:{port}/api/v1/reports"
        running = asyncio.create_task(load(url, requests, concurrency, acked))
        while len(acked) < requests // 3 and not running.done():  # noqa: ASYNC110 - mid-load, however fast
            await asyncio.sleep(0.01)
        before_kill = len(acked)
        assert embedded.process is not None
        embedded.process.send_signal(signal.SIGKILL)  # no shutdown, no AOF flush by redis itself
        embedded.process.wait()
        await asyncio.sleep(0.5)
        embedded.start()  # same directory: the server reloads the append-only file
        run = await running
        client = sync_redis.Redis.from_url(embedded.url, decode_responses=True)
        for _ in range(600):  # the restarted server answers LOADING until the AOF is read back
            try:
                client.ping()
                break
            except sync_redis.exceptions.BusyLoadingError:
                await asyncio.sleep(0.1)
        stored = client.hmget(keys.REPORTS_BY_TRACKING, acked) if acked else []
        missing = sum(1 for value in stored if value is None)
        client.close()
        failed = run.statuses.total() - run.statuses[201]
        print(
            f"durability: {len(acked)} acknowledged ({before_kill} before SIGKILL of redis-server), "
            f"{failed} refused or unanswered while it was down, missing {missing} (target 0)"
        )
    finally:
        stop(app)
        embedded.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10000, help="per round and server")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7, help="alternating throughput rounds")
    parser.add_argument(
        "--fsync", choices=["always", "everysec", "both"], default="both", help="the embedded server's appendfsync"
    )
    args = parser.parse_args()
    modes = ["always", "everysec"] if args.fsync == "both" else [args.fsync]
    with tempfile.TemporaryDirectory(prefix="wc-bench-") as tmp:
        medians = {
            mode: loops.run(throughput(args.requests, args.concurrency, args.rounds, Path(tmp), mode)) for mode in modes
        }
        if len(medians) == 2:  # the default (fsync before "yes") against the faster, less durable one
            print(f"fsync cost: always / everysec = {medians['always'] / medians['everysec']:.0%} of the req/s")
        loops.run(durability(args.requests, args.concurrency, Path(tmp)))


if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    main()
