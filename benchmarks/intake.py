"""Citizen-report intake: throughput and latency against a bare aiohttp endpoint, and durability
when Redis is killed with SIGKILL mid-load.

    .venv/bin/python benchmarks/intake.py [--requests 4000] [--concurrency 16]

1. Throughput: the same load generator posts JSON reports to (a) a bare aiohttp app that parses the
   body and answers 201 with a random code, and (b) warncast's POST /api/v1/reports (validation,
   idempotency key, rate limits, the atomic intake script on the embedded redis-server with the AOF on).
   Each server runs in its own process; the figures are requests/s, p50 and p99 latency, and the ratio.
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
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.storage import EmbeddedRedis  # noqa: E402

BODY = {"category": "waterlogging", "description": "Underpass flooded, benchmark", "lat": 30.666, "lon": 121.0625}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_bare(port: int) -> None:
    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"tracking_code": secrets.token_hex(8), "category": body["category"]}, status=201)

    app = web.Application()
    app.router.add_post("/api/v1/reports", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


def serve_warncast(port: int, redis_url: str, data_dir: str) -> None:
    from citizen_report.model import ReportConfig
    from publisher.settings import Settings
    from publisher.web.app import create_app
    from publisher.web.keys import SERVICES

    settings = Settings(redis_url=redis_url, data_dir=Path(data_dir), secret_key="bench", run_scheduler=False)
    app = create_app(settings)

    async def no_limits(app: web.Application) -> None:  # one client machine sends everything
        app[SERVICES].reports.config = ReportConfig(per_ip=(10**9, 60), per_sender=(10**9, 60))

    app.on_startup.append(no_limits)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True, access_log=None)


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url):
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


async def load(url: str, total: int, concurrency: int, acked: list[str] | None = None) -> tuple[float, list[float]]:
    """Post `total` reports with `concurrency` clients; returns (requests/s, latencies in s)."""
    latencies: list[float] = []
    counter = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)

    async def worker(session: aiohttp.ClientSession) -> None:
        for _ in counter:
            started = time.perf_counter()
            try:
                async with session.post(url, json=BODY, headers={"Idempotency-Key": secrets.token_hex(12)}) as resp:
                    body = await resp.json(content_type=None)
                    if resp.status == 201 and acked is not None:
                        acked.append(body["tracking_code"])
            except (TimeoutError, aiohttp.ClientError, ValueError):
                pass
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return total / elapsed, latencies


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


async def throughput(requests: int, concurrency: int, workdir: Path) -> None:
    redis = EmbeddedRedis(workdir / "redis-throughput")
    redis.start()
    bare_port, app_port = free_port(), free_port()
    bare = start(serve_bare, bare_port)
    app = start(serve_warncast, app_port, redis.url, str(workdir / "data-throughput"))
    try:
        results = {}
        for name, port in (("bare aiohttp", bare_port), ("warncast", app_port)):
            url = f"http://127.0.0.1:{port}/api/v1/reports"
            await wait_up(f"http://127.0.0.1:{port}/")
            await load(url, min(500, requests), concurrency)  # warm up
            results[name] = await load(url, requests, concurrency)
        print(f"throughput: {requests} JSON reports, {concurrency} concurrent clients")
        for name, (rps, latencies) in results.items():
            print(
                f"  {name:13s} {rps:8.0f} req/s   p50 {pct(latencies, 50):6.1f} ms   p99 {pct(latencies, 99):6.1f} ms"
            )
        ratio = results["warncast"][0] / results["bare aiohttp"][0]
        p99 = pct(results["warncast"][1], 99)
        print(f"  ratio warncast / bare = {ratio:.0%} (target >= 50%), warncast p99 {p99:.1f} ms (target < 100 ms)")
    finally:
        stop(bare)
        stop(app)
        redis.stop()


async def durability(requests: int, concurrency: int, workdir: Path) -> None:
    import redis as sync_redis

    from publisher import keys

    embedded = EmbeddedRedis(workdir / "redis-durability")
    embedded.start()
    port = free_port()
    app = start(serve_warncast, port, embedded.url, str(workdir / "data-durability"))
    acked: list[str] = []
    try:
        await wait_up(f"http://127.0.0.1:{port}/")
        url = f"http://127.0.0.1:{port}/api/v1/reports"
        running = asyncio.create_task(load(url, requests, concurrency, acked))
        await asyncio.sleep(1.0)
        before_kill = len(acked)
        assert embedded.process is not None
        embedded.process.send_signal(signal.SIGKILL)  # no shutdown, no AOF flush by redis itself
        embedded.process.wait()
        await asyncio.sleep(0.5)
        embedded.start()  # same directory: the server reloads the append-only file
        await running
        client = sync_redis.Redis.from_url(embedded.url, decode_responses=True)
        stored = client.hmget(keys.REPORTS_BY_TRACKING, acked) if acked else []
        missing = sum(1 for value in stored if value is None)
        client.close()
        print(
            f"durability: {len(acked)} acknowledged ({before_kill} before SIGKILL of redis-server), missing {missing}"
        )
    finally:
        stop(app)
        embedded.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wc-bench-") as tmp:
        asyncio.run(throughput(args.requests, args.concurrency, Path(tmp)))
        asyncio.run(durability(args.requests, args.concurrency, Path(tmp)))


if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    main()
