"""Citizen-report intake: throughput and latency against a bare aiohttp endpoint, and durability
when Redis is killed with SIGKILL mid-load.

    .venv/bin/python benchmarks/intake.py [--requests 10000] [--rounds 7] [--fsync always|everysec|both]
    .venv/bin/python benchmarks/intake.py --cluster [--fsync always]
    .venv/bin/python benchmarks/intake.py --processes 2 [--fsync always]

1. Throughput: the same load generator (this process, `--concurrency` connections, a fresh
   Idempotency-Key per post) posts the same JSON report to (a) a bare aiohttp app that reads the
   body, json-decodes it, checks that it is an object with a category and answers 201 with a JSON
   body of the same shape and size as warncast's plus a Location header, and (b) warncast's POST
   /api/v1/reports (middlewares, validation, idempotency key, rate limits, the atomic intake script
   on the embedded redis-server with the AOF on, the dispatch workers and the reporter notifier
   running as in `warncast serve`; each report's point is looked up in the demo city's areas). The
   monitoring-queue consumer that turns reports into triage incidents does not run: it works after
   the acknowledgement, and may run in any process. Each server runs in its own process on this
   machine. The servers alternate for `--rounds` rounds, because this machine is shared and its load
   varies; each round's ratio compares runs made moments apart, and the headline is the median
   of those ratios (the best run of each is printed too). Latencies are over all rounds.
   Target: warncast >= 50 % of the bare endpoint's requests/s, p99 < 100 ms at that load.
2. Durability: load runs while the redis-server is SIGKILLed and restarted; every report that was
   acknowledged (201) must be found afterwards. Target: 0 missing.

--cluster: (b) also on a 3-primary Redis Cluster (tests/redis_cluster.py, the append-only file on
   with the same appendfsync), in the same rounds: cluster / standalone req/s (target >= 80 % on
   2 cores shared by three primaries), and each against the bare endpoint; then the durability
   test also on the cluster, SIGKILLing the primary that holds the reports' slot.
--replica: (b) also on a standalone primary with one replica (both with the same appendfsync), where
   a report is acknowledged only once the replica has it (WAIT, once per batch of reports): against
   the embedded server and the bare endpoint, in the same rounds.
--profile: samples warncast's server process (the embedded-server one) with py-spy through the
   throughput rounds (pip install py-spy into the venv; not a dependency) and prints the functions
   with the most own and inclusive time. Samples are of a busy process, runnable or running: on a
   shared machine a write that wakes Redis often shows as time in the write, the process waiting
   for a core meanwhile.
--processes N: `warncast serve --processes N` against `warncast serve --processes 1` (the real
   command, each with its own embedded Redis, demo areas loaded before it starts) and the bare
   endpoint, in the same rounds: the scaling factor N / 1. Both are the whole `warncast serve`,
   monitoring consumer included, with their default per-address intake limits: each report comes
   from its own address (X-Forwarded-For from 127.0.0.1, a trusted proxy) and its own point in the
   demo city (all at one point, every report would corroborate one incident, whose record the
   monitoring consumer rewrites whole for each: its cost would grow with the run), to every server
   alike. The load generator shares the machine's cores with the servers. No durability test.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
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

    async def batching(app: web.Application) -> None:
        script = app[SERVICES].reports.intake_script
        if script is not None and script.round_trips:
            print(
                f"  ({redis_url.split('://')[0]} at port {port}: {script.calls} intake scripts in "
                f"{script.round_trips} round trips, {script.calls / script.round_trips:.1f} per round trip)",
                flush=True,
            )

    app.on_startup.append(city)
    app.on_shutdown.append(batching)
    web.run_app(
        app, host="127.0.0.1", port=port, print=None, handle_signals=True, access_log=None, loop=loops.new_event_loop()
    )


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(url):
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


async def wait_processes(url: str, count: int, within: float = 60.0) -> None:
    """Until `count` different serving processes (X-Warncast-Process) have answered new connections."""
    seen: set[str] = set()
    deadline = time.monotonic() + within
    while len(seen) < count:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            try:
                async with session.get(f"{url}/readyz") as resp:
                    if resp.status == 200 and (slot := resp.headers.get("X-Warncast-Process")):
                        seen.add(slot)
            except aiohttp.ClientError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"only processes {sorted(seen)} of {count} answered at {url}")
        await asyncio.sleep(0.02)


class Run(NamedTuple):
    rps: float
    latencies: list[float]  # seconds
    statuses: Counter[int]  # 0: no answer
    failures: Counter[str]  # why there was no answer
    processes: Counter[str]  # X-Warncast-Process of the answers ("" without one)


ADDRESSES = itertools.count(1)  # --processes: one client address per report, over the whole run


def client_address(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


async def load(
    url: str, total: int, concurrency: int, acked: list[str] | None = None, *, forwarded: bool = False
) -> Run:
    """Post `total` reports with `concurrency` clients (`forwarded`: each from its own address, at a
    point of its own in the demo city, so that they do not all corroborate one incident)."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    processes: Counter[str] = Counter()
    counter = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)

    async def worker(session: aiohttp.ClientSession) -> None:
        for _ in counter:
            started = time.perf_counter()
            status = 0
            headers = {"Idempotency-Key": secrets.token_hex(12)}
            body = BODY
            if forwarded:
                headers["X-Forwarded-For"] = client_address(next(ADDRESSES))
                body = {
                    **BODY,
                    "lat": round(random.uniform(30.60, 30.80), 5),
                    "lon": round(random.uniform(120.9, 121.2), 5),
                }
            try:
                async with session.post(url, json=body, headers=headers) as resp:
                    body = await resp.json(content_type=None)
                    status = resp.status
                    processes[resp.headers.get("X-Warncast-Process", "")] += 1
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
    return Run(total / elapsed, latencies, statuses, failures, processes)


def pct(values: list[float], q: int) -> float:
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


@dataclass(frozen=True)
class Ratio:
    """A ratio printed per round and summarised: numerator / denominator, with its target."""

    numerator: str
    denominator: str
    target: str = ""


@dataclass
class Cpu:
    """What one load cost in CPU time: the server's processes, its Redis, and everything else."""

    server: float
    redis: float
    other_cores: float  # cores kept busy by processes that are neither ours nor the load generator


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants, except redis-server (counted as Redis)."""
    from benchlib import children, cpu_seconds, process_name

    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if process_name(current).startswith("redis"):
            continue
        total += cpu_seconds(current)
        todo += children(current)
    return total


def redis_cpu(pids: list[int]) -> float:
    from benchlib import cpu_seconds

    return sum(cpu_seconds(pid) for pid in pids)


async def alternate(
    urls: dict[str, str],
    requests: int,
    concurrency: int,
    rounds: int,
    ratios: list[Ratio],
    *,
    server_pids: dict[str, int],
    redis_pids: dict[str, list[int]],
    forwarded: bool = False,
    drain: dict[str, str] | None = None,
) -> dict[str, list[Run]]:
    """The rounds: every server in turn, each round's ratios compare runs made moments apart (this
    machine is shared and its load varies from one second to the next). Prints rounds and summary,
    with the CPU time each server's processes used per request (a figure the other processes on the
    machine disturb far less than the requests per second). `drain`: server -> its Redis URL, whose
    monitoring queue is waited for after each load (its consumer's work counts as that server's)."""
    from benchlib import cpu_seconds, machine_cpu_seconds

    for url in urls.values():
        await load(f"{url}/api/v1/reports", min(500, requests), concurrency, forwarded=forwarded)  # warm up
    runs: dict[str, list[Run]] = {name: [] for name in urls}
    cpus: dict[str, list[Cpu]] = {name: [] for name in urls}
    drained: dict[str, list[float]] = {name: [] for name in urls}
    per_round: dict[Ratio, list[float]] = {ratio: [] for ratio in ratios}
    everyone = [pid for pids in redis_pids.values() for pid in pids]
    for round_number in range(1, rounds + 1):
        for name, url in urls.items():
            ours = {server: tree_cpu(pid) for server, pid in server_pids.items()}
            stores, machine, generator = redis_cpu(everyone), machine_cpu_seconds(), cpu_seconds(os.getpid())
            mine = redis_cpu(redis_pids.get(name, []))
            started = time.perf_counter()
            run = await load(f"{url}/api/v1/reports", requests, concurrency, forwarded=forwarded)
            if drain and name in drain:
                drained[name].append(await monitoring_drained(drain[name]))
            used = {server: tree_cpu(pid) - ours[server] for server, pid in server_pids.items()}
            known = sum(used.values()) + redis_cpu(everyone) - stores + cpu_seconds(os.getpid()) - generator
            cpus[name].append(
                Cpu(
                    used[name],
                    redis_cpu(redis_pids.get(name, [])) - mine,
                    max(0.0, machine_cpu_seconds() - machine - known) / (time.perf_counter() - started),
                )
            )
            if set(run.statuses) != {201}:
                raise RuntimeError(f"{name} answered {dict(run.statuses)}, failures {dict(run.failures)}")
            runs[name].append(run)
        for ratio in ratios:
            per_round[ratio].append(runs[ratio.numerator][-1].rps / runs[ratio.denominator][-1].rps)
        figures = ", ".join(f"{name} {name_runs[-1].rps:6.0f}" for name, name_runs in runs.items())
        shares = ", ".join(f"{r.numerator} / {r.denominator} {per_round[r][-1]:.0%}" for r in ratios)
        others = max(cpu.other_cores for name_cpus in cpus.values() for cpu in name_cpus[-1:])
        print(f"  round {round_number}: {figures} req/s; {shares}; other processes up to {others:.1f} cores")
    width = max(len(name) for name in urls)
    per_cpu: dict[str, float] = {}
    for name, name_runs in runs.items():
        latencies = [latency for run in name_runs for latency in run.latencies]
        rps = statistics.median(run.rps for run in name_runs)
        p50, p99 = pct(latencies, 50), pct(latencies, 99)
        spread = sum((run.processes for run in name_runs), Counter())
        answered_by = (
            "   answered by process " + ", ".join(f"{k}: {v}" for k, v in sorted(spread.items())) if any(spread) else ""
        )
        print(f"  {name:{width}s} median {rps:6.0f} req/s   p50 {p50:5.1f} ms   p99 {p99:5.1f} ms{answered_by}")
        server_seconds = sum(cpu.server for cpu in cpus[name])
        store_seconds = sum(cpu.redis for cpu in cpus[name])
        total = requests * len(name_runs)
        per_cpu[name] = total / server_seconds if server_seconds else 0.0
        with_redis = f", {total / (server_seconds + store_seconds):6.0f} with its Redis" if store_seconds else ""
        after = (
            f"; its monitoring consumer was done {statistics.median(drained[name]):.1f} s after the last answer "
            "(median; counted)"
            if drained[name]
            else ""
        )
        print(
            f"  {'':{width}s} {per_cpu[name]:6.0f} requests per CPU-second of its processes{with_redis}; "
            f"other processes kept {statistics.median(cpu.other_cores for cpu in cpus[name]):.1f} cores busy{after}"
        )
    for ratio in ratios:
        best = max(r.rps for r in runs[ratio.numerator]) / max(r.rps for r in runs[ratio.denominator])
        target = f" (target {ratio.target})" if ratio.target else ""
        by_cpu = per_cpu[ratio.numerator] / per_cpu[ratio.denominator] if per_cpu[ratio.denominator] else 0.0
        print(
            f"  ratio {ratio.numerator} / {ratio.denominator}: median of rounds "
            f"{statistics.median(per_round[ratio]):.0%}{target}, best against best {best:.0%}; "
            f"requests per CPU-second {by_cpu:.0%}"
        )
    return runs


async def monitoring_drained(url: str, within: float = 300.0) -> float:
    """Seconds until the monitoring consumer group has read and acknowledged every queued item."""
    import redis.asyncio as aioredis

    from foundation.store import keys

    started = time.perf_counter()
    client = aioredis.from_url(url, decode_responses=True)
    try:
        while time.perf_counter() - started < within:
            last = (await client.xinfo_stream(keys.MONITORING_QUEUE))["last-generated-id"]
            groups = {g["name"]: g for g in await client.xinfo_groups(keys.MONITORING_QUEUE)}
            group = groups.get(keys.MONITORING_GROUP)
            if group and group["last-delivered-id"] == last and not group["pending"]:
                break
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    return time.perf_counter() - started


def p99_line(runs: dict[str, list[Run]], names: list[str]) -> None:
    for name in names:
        p99 = pct([latency for run in runs[name] for latency in run.latencies], 99)
        print(f"  {name} p99 {p99:.1f} ms over all rounds (target < 100 ms)")


async def throughput(
    requests: int,
    concurrency: int,
    rounds: int,
    workdir: Path,
    fsync: str,
    cluster: bool = False,
    profile: Path | None = None,
    replica: bool = False,
) -> float:
    """The rounds against an embedded server with `appendfsync <fsync>` (and a cluster with the same);
    returns warncast's median req/s."""
    from benchlib import start_cluster, start_replicated

    redis = EmbeddedRedis(workdir / f"redis-throughput-{fsync}", fsync=fsync)
    redis.start()
    nodes = await asyncio.to_thread(start_cluster, fsync) if cluster else None
    bare_port, app_port = free_port(), free_port()
    servers = [start(serve_bare, bare_port), start(serve_warncast, app_port, redis.url, str(workdir / f"data-{fsync}"))]
    urls = {"bare aiohttp": f"http://127.0.0.1:{bare_port}", "warncast": f"http://127.0.0.1:{app_port}"}
    ratios = [Ratio("warncast", "bare aiohttp", ">= 50%")]
    if nodes is not None:
        cluster_port = free_port()
        servers.append(start(serve_warncast, cluster_port, nodes.url, str(workdir / f"data-cluster-{fsync}")))
        urls["warncast cluster"] = f"http://127.0.0.1:{cluster_port}"
        ratios += [Ratio("warncast cluster", "bare aiohttp", ">= 50%"), Ratio("warncast cluster", "warncast", ">= 80%")]
    replicated = start_replicated(workdir / f"replicated-{fsync}", fsync) if replica else None
    if replicated is not None:
        replicated_port = free_port()
        servers.append(start(serve_warncast, replicated_port, replicated.url, str(workdir / f"data-replica-{fsync}")))
        urls["warncast replicated"] = f"http://127.0.0.1:{replicated_port}"
        ratios += [Ratio("warncast replicated", "bare aiohttp"), Ratio("warncast replicated", "warncast")]
    try:
        for url in urls.values():
            await wait_up(f"{url}/")
        where = (" and a 3-primary cluster" if cluster else "") + (" and a primary with a replica" if replica else "")
        print(
            f"throughput, appendfsync {fsync}{where}: {requests} JSON reports per round, "
            f"{concurrency} concurrent clients, {rounds} rounds"
        )
        server_pids = {name: int(server.pid or 0) for name, server in zip(urls, servers, strict=True)}
        assert redis.process is not None
        stores = {"warncast": [redis.process.pid]}
        if nodes is not None:
            stores["warncast cluster"] = [node.proc.pid for node in nodes.nodes if node.proc is not None]
        if replicated is not None:
            stores["warncast replicated"] = replicated.pids
        sampler = None
        if profile is not None:
            from fanout import Sampler  # py-spy, as `fanout.py --serve --profile` runs it

            sampler = Sampler(server_pids["warncast"], profile, PROFILE_RATE)
        try:
            runs = await alternate(
                urls, requests, concurrency, rounds, ratios, server_pids=server_pids, redis_pids=stores
            )
        finally:
            if sampler is not None:
                sampler.stop()
        p99_line(runs, [name for name in urls if name != "bare aiohttp"])
        if profile:
            print_profile(profile)
        return statistics.median(run.rps for run in runs["warncast"])
    finally:
        for server in servers:
            stop(server)
        redis.stop()
        if nodes is not None:
            nodes.stop()
        if replicated is not None:
            replicated.stop()


PROFILE_RATE = 250  # py-spy samples per second


def print_profile(path: Path) -> None:
    from fanout import profile_summary

    summary = profile_summary(path, top=25)
    if not summary["samples"]:
        print(f"py-spy recorded nothing: see {path.with_suffix('.log')}")
        return
    print(f"py-spy profile of warncast ({summary['samples']} samples at {PROFILE_RATE}/s, busy only), raw: {path}")
    for title, rows in (("own time", "own"), ("inclusive time", "inclusive"), ("own time per package", "packages")):
        print(f"  {title}:")
        for row in summary[rows]:
            print(f"    {row}")


# --processes: the real `warncast serve`


def serve_command(processes: int, port: int, data_dir: Path, fsync: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARNCAST_", "TWILIO_", "TELEGRAM_", "REDIS_"))}
    env.update(
        {
            "WARNCAST_DATA_DIR": str(data_dir),
            "WARNCAST_SECRET_KEY": "bench",
            "WARNCAST_REDIS_FSYNC": fsync,
            "WARNCAST_LOG_FORMAT": "text",
            "WARNCAST_TRUSTED_PROXIES": "127.0.0.1",  # the load generator poses as one client per report
            "WARNCAST_PUBLIC_RATE": "1000000",
            "WARNCAST_PUBLIC_BURST": "1000000",
        }
    )
    warncast = Path(sys.executable).parent / "warncast"
    args = [str(warncast), "serve", "--host", "127.0.0.1", "--port", str(port), "--processes", str(processes)]
    log = open(data_dir / "serve.log", "ab")  # noqa: SIM115 - the child holds it
    return subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)


async def seed_areas(data_dir: Path, fsync: str) -> None:
    """The demo city's areas into the embedded server of `data_dir` (started and stopped here; serve
    starts it again from its append-only file)."""
    import redis.asyncio as aioredis

    from foundation.areas.registry import store_areas
    from warncast.demo_city import demo_areas

    embedded = EmbeddedRedis(data_dir / "redis", fsync=fsync)
    await asyncio.to_thread(embedded.start)
    try:
        client = aioredis.from_url(embedded.url)
        try:
            await store_areas(client, demo_areas())
        finally:
            await client.aclose()
    finally:
        await asyncio.to_thread(embedded.stop)


def stop_serve(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the supervisor stops its children and the embedded Redis
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def scaling(requests: int, concurrency: int, rounds: int, workdir: Path, fsync: str, processes: int) -> None:
    bare_port = free_port()
    bare = start(serve_bare, bare_port)
    urls = {"bare aiohttp": f"http://127.0.0.1:{bare_port}"}
    serves: list[subprocess.Popen[bytes]] = []
    sockets: dict[str, str] = {}  # each serve's embedded Redis
    try:
        for count in (1, processes):
            data_dir = workdir / f"serve-{count}-{fsync}"
            data_dir.mkdir(parents=True)
            await seed_areas(data_dir, fsync)
            port = free_port()
            serves.append(serve_command(count, port, data_dir, fsync))
            urls[f"serve --processes {count}"] = f"http://127.0.0.1:{port}"
            sockets[f"serve --processes {count}"] = EmbeddedRedis(data_dir / "redis").url
        for name, url in urls.items():
            await wait_up(f"{url}/readyz")
            if name.endswith(f" {processes}") and processes > 1:
                await wait_processes(url, processes)
        one, many = "serve --processes 1", f"serve --processes {processes}"
        print(
            f"throughput, `warncast serve --processes {processes}` against `--processes 1`, appendfsync {fsync}: "
            f"{requests} JSON reports per round, {concurrency} concurrent clients, {rounds} rounds, "
            f"{os.cpu_count()} cores shared with this load generator"
        )
        ratios = [
            Ratio(many, one),  # the scaling factor, on this machine's cores
            Ratio(one, "bare aiohttp", ">= 50%"),
            Ratio(many, "bare aiohttp"),
        ]
        from benchlib import children, process_name

        server_pids = {"bare aiohttp": int(bare.pid or 0)}
        stores: dict[str, list[int]] = {}
        for name, proc in zip(list(urls)[1:], serves, strict=True):
            server_pids[name] = proc.pid
            stores[name] = [pid for pid in children(proc.pid) if process_name(pid).startswith("redis")]
        runs = await alternate(
            urls,
            requests,
            concurrency,
            rounds,
            ratios,
            server_pids=server_pids,
            redis_pids=stores,
            forwarded=True,
            drain=sockets,
        )
        p99_line(runs, [one, many])
    finally:
        for proc in serves:
            stop_serve(proc)
        stop(bare)


# Durability


async def durability(requests: int, concurrency: int, workdir: Path, cluster: bool = False) -> None:
    import redis as sync_redis

    from foundation.store import keys

    if cluster:
        from benchlib import node_of_key, restart_cluster_node, start_cluster

        nodes = await asyncio.to_thread(start_cluster, "always")
        reports_port = node_of_key(nodes, keys.REPORTS_BY_TRACKING)
        node = next(n for n in nodes.nodes if n.port == reports_port)
        url, label = nodes.url, f"the cluster primary holding the reports (port {reports_port})"

        def kill() -> None:
            assert node.proc is not None
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait()

        def restart() -> None:
            restart_cluster_node(nodes, reports_port, "always")

        def stored(acked: list[str]) -> list[object]:
            client = sync_redis.RedisCluster(host="127.0.0.1", port=reports_port, decode_responses=True)
            try:
                return client.hmget(keys.REPORTS_BY_TRACKING, acked) if acked else []
            finally:
                client.close()

        def cleanup() -> None:
            nodes.stop()
    else:
        embedded = EmbeddedRedis(workdir / "redis-durability")
        embedded.start()
        url, label = embedded.url, "redis-server"

        def kill() -> None:
            assert embedded.process is not None
            embedded.process.send_signal(signal.SIGKILL)  # no shutdown, no AOF flush by redis itself
            embedded.process.wait()

        def restart() -> None:
            embedded.start()  # same directory: the server reloads the append-only file

        def stored(acked: list[str]) -> list[object]:
            client = sync_redis.Redis.from_url(embedded.url, decode_responses=True)
            try:
                for _ in range(600):  # the restarted server answers LOADING until the AOF is read back
                    try:
                        client.ping()
                        break
                    except sync_redis.exceptions.BusyLoadingError:
                        time.sleep(0.1)
                return client.hmget(keys.REPORTS_BY_TRACKING, acked) if acked else []
            finally:
                client.close()

        def cleanup() -> None:
            embedded.stop()

    port = free_port()
    app = start(serve_warncast, port, url, str(workdir / f"data-durability{'-cluster' if cluster else ''}"))
    acked: list[str] = []
    try:
        await wait_up(f"http://127.0.0.1:{port}/")
        target = f"http://127.0.0.1:{port}/api/v1/reports"
        running = asyncio.create_task(load(target, requests, concurrency, acked))
        while len(acked) < requests // 3 and not running.done():  # noqa: ASYNC110 - mid-load, however fast
            await asyncio.sleep(0.01)
        before_kill = len(acked)
        await asyncio.to_thread(kill)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(restart)
        run = await running
        values = await asyncio.to_thread(stored, acked)
        missing = sum(1 for value in values if value is None)
        failed = run.statuses.total() - run.statuses[201]
        print(
            f"durability{' on the cluster' if cluster else ''}: {len(acked)} acknowledged ({before_kill} before "
            f"SIGKILL of {label}), {failed} refused or unanswered while it was down, missing {missing} (target 0)"
        )
    finally:
        stop(app)
        cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10000, help="per round and server")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7, help="alternating throughput rounds")
    parser.add_argument(
        "--fsync", choices=["always", "everysec", "both"], default="both", help="the embedded server's appendfsync"
    )
    parser.add_argument("--cluster", action="store_true", help="also on a 3-primary Redis Cluster, and compare")
    parser.add_argument("--replica", action="store_true", help="also on a primary with a replica, acknowledged by WAIT")
    parser.add_argument("--profile", action="store_true", help="sample warncast's server with py-spy (throughput)")
    parser.add_argument(
        "--processes", type=int, default=0, help="compare `warncast serve --processes N` with --processes 1"
    )
    args = parser.parse_args()
    if (args.cluster or args.replica) and args.processes:
        parser.error("--cluster, --replica and --processes are separate runs")
    modes = ["always", "everysec"] if args.fsync == "both" else [args.fsync]
    with tempfile.TemporaryDirectory(prefix="wc-bench-") as tmp:
        if args.processes:
            for mode in modes:
                loops.run(scaling(args.requests, args.concurrency, args.rounds, Path(tmp), mode, args.processes))
            return
        medians = {
            mode: loops.run(
                throughput(
                    args.requests,
                    args.concurrency,
                    args.rounds,
                    Path(tmp),
                    mode,
                    args.cluster,
                    Path(tempfile.gettempdir()) / f"intake-profile-{mode}.raw" if args.profile else None,
                    args.replica,
                )
            )
            for mode in modes
        }
        if len(medians) == 2:  # the default (fsync before "yes") against the faster, less durable one
            print(f"fsync cost: always / everysec = {medians['always'] / medians['everysec']:.0%} of the req/s")
        loops.run(durability(args.requests, args.concurrency, Path(tmp)))
        if args.cluster:
            loops.run(durability(args.requests, args.concurrency, Path(tmp), cluster=True))


if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    main()
