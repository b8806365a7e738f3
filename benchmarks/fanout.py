"""Fan-out benchmark: N SMS subscribers, one red warning, real workers and the real twilio client
against the local Twilio stand-in, compared with a bare aiohttp client loop posting the same requests
(same texts, fields and headers, as many, as many at once) to the same stand-in in the same run,
before and after the dispatch (the better of the two counts: this machine is shared). Midway one
worker is killed with SIGKILL and a new one started; the stand-in then tells how many recipients
were missed or got duplicates. Then a series of community warnings times publish-to-first-delivery.

    .venv/bin/python benchmarks/fanout.py --subscribers 100000
    .venv/bin/python benchmarks/fanout.py --subscribers 1000000
    .venv/bin/python benchmarks/fanout.py --cluster [--subscribers 100000]
    .venv/bin/python benchmarks/fanout.py --serve [--subscribers 20000] [--rounds 3] [--profile]

Each worker process sends to its own port of the stand-in (benchmarks/standin.py), so the figures
per process (messages, msg/s, CPU seconds) are counted, not divided.

--cluster: the same run twice, on the embedded server and on a 3-primary Redis Cluster started from
the bundled redis-server (tests/redis_cluster.py, with the embedded server's append-only file and
appendfsync), with the same subscribers, workers and concurrency; prints cluster / standalone
throughput (target >= 0.80 on 2 cores shared by three primaries) beside each run's ratio against
the bare loop (target >= 0.70).

--serve: one default `warncast serve` process (its web app and its one dispatch worker, the
embedded Redis it starts itself). Each of `--rounds` rounds runs the bare loop (one process, at the
serve worker's concurrency, WARNCAST_DISPATCH_CONCURRENCY, default 64) and then publishes a warning
through POST /api/v1/warnings/{id}/publish, timed from the request to the stand-in's last
acknowledgement: the round's ratio compares two runs moments apart, the headline is their median.
Target >= 0.70. Also printed: the CPU time per message of the bare loop and of the serve process
(steadier than msg/s when other processes load the machine) and the cores each process kept busy.
`--profile` samples the serve process with py-spy (pip install py-spy into the venv; not a
dependency) through the rounds and prints the functions with the most own and inclusive time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (  # noqa: E402
    ROOT,
    StandIn,
    children,
    communities_of,
    cpu_seconds,
    load_subscribers,
    machine_cpu_seconds,
    measure_enqueue,
    peak_rss_mb,
    primary_figures,
    process_name,
    red_warning,
    start_cluster,
)

from foundation import loops  # noqa: E402
from foundation.access.audit import Actor  # noqa: E402
from foundation.areas.registry import store_areas  # noqa: E402
from foundation.settings import Settings  # noqa: E402
from foundation.store import keys  # noqa: E402
from foundation.store.connection import EmbeddedRedis, open_redis  # noqa: E402
from publisher.dispatch.worker import STATE_WRITE_SECONDS  # noqa: E402
from publisher.model import Message  # noqa: E402
from warncast.demo_city import demo_areas  # noqa: E402
from warncast.services import Services  # noqa: E402

ACCOUNT, TOKEN, SENDER = "ACbench", "bench-secret", "+15550001111"
WARNCAST = Path(sys.executable).parent / "warncast"
CHIEF = Actor("bench-chief", frozenset({"chief"}))


@dataclass(frozen=True)
class SameRequests:
    """What the workers will post for the warning, so the baseline posts the same: the rendered text
    in the recipient's language, the signed status callback and validity period, and the headers
    the twilio client sends."""

    texts: dict[str, str]  # language -> SMS text
    callback: str
    validity: int

    @classmethod
    async def of(cls, services: Services, draft: Message) -> SameRequests:
        await services.start_channels()  # outbox mode here: only rendering is used
        sms = services.channels["sms"]
        renditions = {lang: await sms.render(draft, lang, kind="alert") for lang in ("zh_Hans", "en")}
        await services.close_channels()
        callback = f"{services.settings.public_url}/webhooks/twilio/status?{urlencode({'ref': draft.id})}"
        return cls({k: r.text for k, r in renditions.items()}, callback, renditions["zh_Hans"].ttl)


async def bare_loop(base: str, n: int, concurrency: int, same: SameRequests) -> float:
    """What the machine does with nothing but aiohttp: the same form POSTs, same concurrency."""
    url = f"{base}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    headers = {
        "Authorization": "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode(),
        "User-Agent": "twilio-python (bare loop)",
        "X-Twilio-Client": "python-bare",
        "Accept-Charset": "utf-8",
        "Accept": "application/json",
    }
    queue = iter(range(n))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def client() -> None:
            for i in queue:
                data = {
                    "To": f"+86137{i:08d}",
                    "Body": same.texts["zh_Hans" if i % 3 else "en"],  # the subscribers' language mix
                    "From": SENDER,
                    "StatusCallback": same.callback,
                    "ValidityPeriod": str(same.validity),
                }
                async with session.post(url, data=data, headers=headers) as resp:
                    await resp.read()

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return time.perf_counter() - started


def clean_env() -> dict[str, str]:
    """This process's environment without any warncast, Twilio, Telegram or Redis setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("WARNCAST_", "TWILIO_", "TELEGRAM_", "REDIS_"))}


def worker_env(redis_url: str, twilio: str, args: argparse.Namespace, data_dir: Path) -> dict[str, str]:
    return {
        **clean_env(),
        "REDIS_URL": redis_url,
        "WARNCAST_DATA_DIR": str(data_dir),
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM": SENDER,
        "TWILIO_API_BASE": twilio,
        "WARNCAST_SMS_RATE": str(args.rate),
        "WARNCAST_DISPATCH_CONCURRENCY": str(args.concurrency // args.workers),
        "WARNCAST_DISPATCH_RECLAIM_AFTER": "5",
        "WARNCAST_LOG_FORMAT": "text",
        "WARNCAST_SECRET_KEY": "bench",
    }


def data_log(env: dict[str, str]) -> Path:
    return Path(env["WARNCAST_DATA_DIR"]) / "workers.log"


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    data_log(env).parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [str(WARNCAST), "worker"],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(data_log(env), "ab"),  # noqa: SIM115 - the child holds it
    )


def running_workers(log: Path) -> int:
    """How many worker processes have said "worker running" in this log so far."""
    return log.read_bytes().count(b"worker running") if log.exists() else 0


async def wait_running(log: Path, count: int, workers: list[subprocess.Popen[bytes]], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while running_workers(log) < count:
        if any(w.poll() is not None for w in workers):
            raise RuntimeError(f"a worker exited; see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers not running after {within:.0f} s; see {log}")
        await asyncio.sleep(0.05)


async def first_delivery_latencies(services: Services, samples: int) -> list[float]:
    """Seconds from publication to the first accepted message, for warnings to one community each
    (about N/56 recipients), published one after another on otherwise idle workers."""
    communities = communities_of(services.registry)
    latencies = []
    for i in range(samples):
        draft = await services.warnings.create(
            CHIEF, red_warning(services.warnings.now(), communities[i % len(communities)])
        )
        message = await services.warnings.fast_path(CHIEF, draft.id, "benchmark")
        while True:
            stats = await services.redis.hgetall(keys.delivery_stats(message.id))
            planned = int(stats.get("sms.planned", 0))
            if planned and int(stats.get("sms.sent", 0)) >= planned:
                break
            await asyncio.sleep(0.02)
        latencies.append((int(stats["sms.first_at"]) - int(stats["published_at"])) / 1000)
    return sorted(latencies)


@dataclass
class Target:
    """Where one fan-out runs: a Redis URL and the PIDs of its server processes (for their RSS)."""

    label: str  # standalone | cluster
    url: str
    redis_pids: list[int]


@dataclass
class Slot:
    """One worker process's place: its port of the stand-in and every PID it has had."""

    port: int
    env: dict[str, str]
    pids: list[int] = field(default_factory=list)
    cpu_at_start: dict[int, float] = field(default_factory=dict)
    cpu_at_end: dict[int, float] = field(default_factory=dict)


async def fanout(
    target: Target, args: argparse.Namespace, workdir: Path, standin: StandIn, http: aiohttp.ClientSession
) -> dict[str, Any] | None:
    """One complete fan-out on `target`; returns its figures (None for --enqueue-only)."""
    n = args.subscribers
    data_dir = workdir / target.label
    settings = Settings(redis_url=target.url, data_dir=data_dir, secret_key="bench", log_json=False)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        async with open_redis(settings) as redis:
            services = await Services.build(settings, redis)
            await store_areas(redis, demo_areas())
            await services.registry.refresh(redis)
            seconds = await load_subscribers(redis, n, communities_of(services.registry))
            print(f"[{target.label}] loaded {n:,} subscribers in {seconds:.1f} s")

            if args.enqueue_only:
                print(
                    json.dumps({"redis": target.label, "subscribers": n, **await measure_enqueue(services)}, indent=2)
                )
                return None
            draft = await services.warnings.create(CHIEF, red_warning(services.warnings.now()))
            same = await SameRequests.of(services, draft)
            bench_cpu = cpu_seconds(os.getpid())
            bare_seconds = await bare_loop(standin.url(), n, args.concurrency, same)
            bare_cpu = cpu_seconds(os.getpid()) - bench_cpu
            print(
                f"[{target.label}] bare aiohttp loop: {n:,} requests in {bare_seconds:.1f} s "
                f"= {n / bare_seconds:,.0f}/s"
            )

            slots = [
                Slot(port, worker_env(target.url, f"http://127.0.0.1:{port}", args, data_dir))
                for port in standin.ports[: args.workers]
            ]
            log = data_log(slots[0].env)
            ready_before = running_workers(log)
            for slot in slots:
                workers.append(start_worker(slot.env))
                slot.pids.append(workers[-1].pid)
            await wait_running(log, ready_before + len(slots), workers)  # connected, in the consumer groups
            await asyncio.sleep(0.5)
            for slot, worker in zip(slots, workers, strict=True):
                slot.cpu_at_start[worker.pid] = cpu_seconds(worker.pid)
            await standin.window(http)
            baseline = await standin.stats(http)
            redis_before = await primary_figures(redis)

            published_at = time.perf_counter()
            message = await services.warnings.fast_path(CHIEF, draft.id, "benchmark")
            while not await redis.hget(keys.plan(message.id), "done"):  # noqa: ASYNC110 (other processes)
                await asyncio.sleep(0.01)
            enqueue_wall = time.perf_counter() - published_at
            planner_seconds = float(await redis.hget(keys.plan(message.id), "seconds") or 0)

            killed = False
            replacement: int | None = None  # the new worker's PID until it is running
            while True:
                stats = await redis.hgetall(keys.delivery_stats(message.id))
                done = sum(int(stats.get(f"sms.{k}", 0)) for k in ("sent", "failed", "dead"))
                planned = int(stats.get("sms.planned", 0))
                if args.kill and not killed and done >= planned * 0.4:
                    ready_before = running_workers(log)
                    slots[0].cpu_at_end[workers[0].pid] = cpu_seconds(workers[0].pid)
                    workers[0].send_signal(signal.SIGKILL)
                    workers[0].wait()
                    workers[0] = start_worker(slots[0].env)
                    slots[0].pids.append(workers[0].pid)
                    replacement, killed = workers[0].pid, True
                    print(f"[{target.label}] killed a worker with SIGKILL at {done:,} deliveries and started another")
                if replacement is not None and running_workers(log) > ready_before:
                    slots[0].cpu_at_start[replacement] = cpu_seconds(replacement)  # its start is not fan-out work
                    replacement = None
                pending = (await redis.xpending(keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP))["pending"]
                queued = await redis.xlen(keys.DISPATCH_QUEUE)
                if planned and done >= planned and not pending and not queued:
                    break
                await asyncio.sleep(0.05)
            dispatch_seconds = time.perf_counter() - published_at
            after = await standin.stats(http)
            redis_after = await primary_figures(redis)
            for slot, worker in zip(slots, workers, strict=True):
                slot.cpu_at_end[worker.pid] = cpu_seconds(worker.pid)
            peak_workers = max(peak_rss_mb(w.pid) for w in workers)
            latencies = await first_delivery_latencies(services, args.latency_samples)
            for worker in workers:
                worker.send_signal(signal.SIGTERM)  # idle now; the second baseline gets the machine
            for worker in workers:
                worker.wait(15)
            # The machine is shared and noisy: the baseline runs before and after, and its better
            # figure is the one we compare with.
            bench_cpu = cpu_seconds(os.getpid())
            bare_after = await bare_loop(standin.url(), n, args.concurrency, same)
            bare_cpu = min(bare_cpu, cpu_seconds(os.getpid()) - bench_cpu)
            print(
                f"[{target.label}] bare aiohttp loop again: {n:,} requests in {bare_after:.1f} s "
                f"= {n / bare_after:,.0f}/s"
            )
            bare_seconds = min(bare_seconds, bare_after)
            received = after["received"] - baseline["received"]
            recipients = after["recipients"] - baseline["recipients"]
            duplicates = after["duplicates"] - baseline["duplicates"]
            first = (int(stats["sms.first_at"]) - int(stats["published_at"])) / 1000
            peak_redis = sum(peak_rss_mb(pid) for pid in target.redis_pids)

            rate = received / dispatch_seconds
            bare_rate = n / bare_seconds
            per_process = []
            for number, slot in enumerate(slots, start=1):
                sent = int(after["per_port"].get(str(slot.port), 0))
                cpu = sum(slot.cpu_at_end.get(pid, 0.0) - slot.cpu_at_start.get(pid, 0.0) for pid in slot.pids)
                per_process.append(
                    {
                        "worker": number,
                        "pids": slot.pids,
                        "messages": sent,
                        "messages_per_second": round(sent / dispatch_seconds),
                        "cpu_seconds": round(cpu, 1),
                        "messages_per_cpu_second": round(sent / cpu) if cpu else None,
                    }
                )
            # A killed worker can have sent, unrecorded, what it had in flight and what it sent since
            # its last state write (every STATE_WRITE_SECONDS; two intervals, for the write's own time).
            per_worker_rate = per_process[0]["messages_per_second"]
            bound = args.concurrency // args.workers + math.ceil(per_worker_rate * 2 * STATE_WRITE_SECONDS)
            return {
                "redis": target.label,
                "subscribers": n,
                "planned": planned,
                "workers": args.workers,
                "concurrency": args.concurrency,
                "enqueue_seconds_wall": round(enqueue_wall, 2),
                "planner_seconds": round(planner_seconds, 2),
                "publish_to_first_delivery_seconds": round(first, 3),
                "first_delivery_p50_seconds_community_warnings": round(latencies[len(latencies) // 2], 3)
                if latencies
                else None,
                "first_delivery_max_seconds_community_warnings": round(latencies[-1], 3) if latencies else None,
                "dispatch_seconds": round(dispatch_seconds, 1),
                "messages_per_second": round(rate),
                "bare_loop_per_second": round(bare_rate),
                "ratio_vs_bare_loop": round(rate / bare_rate, 3),
                "missed_recipients": planned - recipients,
                "duplicated_recipients": duplicates,
                "duplicate_bound": bound if args.kill else 0,
                "per_process": per_process,
                "bare_loop_messages_per_cpu_second": round(n / bare_cpu) if bare_cpu else None,
                "ratio_by_cpu": round(received / sum(p["cpu_seconds"] for p in per_process) / (n / bare_cpu), 3)
                if bare_cpu and all(p["cpu_seconds"] for p in per_process)
                else None,
                "redis_cpu_seconds": {
                    node: round(redis_after[node]["cpu_seconds"] - redis_before[node]["cpu_seconds"], 1)
                    for node in redis_after
                },
                "peak_rss_mb_worker": round(peak_workers),
                "peak_rss_mb_redis": round(peak_redis),
            }
    finally:
        print(f"[{target.label}] worker logs: {data_dir / 'workers.log'}")
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="wc-bench-"))
    embedded = EmbeddedRedis(workdir / "redis")
    cluster = None
    standin: StandIn | None = None
    results: dict[str, dict[str, Any] | None] = {}
    try:
        async with aiohttp.ClientSession() as http:
            embedded.start()
            assert embedded.process is not None
            targets = [Target("standalone", embedded.url, [embedded.process.pid])]
            if args.cluster:
                targets.append(Target("cluster", "", []))  # started once the standalone run is over
            for target in targets:
                if target.label == "cluster":
                    await asyncio.to_thread(embedded.stop)  # the cluster run gets the machine to itself
                    cluster = await asyncio.to_thread(start_cluster, "always")  # the embedded server's appendfsync
                    target.url = cluster.url
                    target.redis_pids = [node.proc.pid for node in cluster.nodes if node.proc is not None]
                standin = StandIn.start(ACCOUNT, TOKEN, ports=args.workers)  # a fresh one: counts from zero
                try:
                    results[target.label] = result = await fanout(target, args, workdir, standin, http)
                finally:
                    standin.stop()
                if result:
                    print(json.dumps(result, indent=2))
        single, multi = results.get("standalone"), results.get("cluster")
        if single and multi:
            print(json.dumps(compare(single, multi), indent=2))
    finally:
        embedded.stop()
        if cluster is not None:
            cluster.stop()


def compare(single: dict[str, Any], multi: dict[str, Any]) -> dict[str, Any]:
    """The cluster run against the standalone run of the same benchmark."""
    raw = multi["messages_per_second"] / single["messages_per_second"]
    normalised = multi["ratio_vs_bare_loop"] / single["ratio_vs_bare_loop"]
    by_cpu = (
        multi["ratio_by_cpu"] / single["ratio_by_cpu"] if multi["ratio_by_cpu"] and single["ratio_by_cpu"] else None
    )

    def summary(run: dict[str, Any]) -> dict[str, Any]:
        return {
            "messages_per_second": run["messages_per_second"],
            "ratio_vs_bare_loop": run["ratio_vs_bare_loop"],
            "missed_recipients": run["missed_recipients"],
            "duplicated_recipients": run["duplicated_recipients"],
            "duplicate_bound": run["duplicate_bound"],
            "messages_per_second_per_worker": [p["messages_per_second"] for p in run["per_process"]],
            "messages_per_cpu_second_per_worker": [p["messages_per_cpu_second"] for p in run["per_process"]],
            "bare_loop_messages_per_cpu_second": run["bare_loop_messages_per_cpu_second"],
            "ratio_by_cpu": run["ratio_by_cpu"],
            "redis_cpu_seconds": run["redis_cpu_seconds"],
            "planner_seconds": run["planner_seconds"],
        }

    return {
        "cluster_vs_standalone": {
            "throughput_ratio": round(raw, 3),
            "throughput_ratio_each_against_its_own_bare_loop": round(normalised, 3),
            "workers_messages_per_cpu_second_ratio": round(by_cpu, 3) if by_cpu else None,
            "target": ">= 0.80 (and each ratio_vs_bare_loop >= 0.70)",
        },
        "standalone": summary(single),
        "cluster": summary(multi),
    }


# --serve: one `warncast serve` process


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def readyz(http: aiohttp.ClientSession, base: str) -> int:
    try:
        async with http.get(f"{base}/readyz") as resp:
            return resp.status
    except aiohttp.ClientError:
        return 0


async def seed_serve(
    data_dir: Path, public_url: str, n: int, drafts: int
) -> tuple[str, list[tuple[str, SameRequests]]]:
    """Into the embedded server of `data_dir` (started here, stopped again: serve starts it from its
    append-only file): the demo city's areas, `n` subscribers, a chief's API token and `drafts` red
    warning drafts. Returns the token and (draft id, what the baseline posts for it) of each."""
    from foundation.access.auth import Accounts

    settings = Settings(data_dir=data_dir, secret_key="bench", log_json=False, public_url=public_url)
    async with open_redis(settings) as redis:
        services = await Services.build(settings, redis)
        await store_areas(redis, demo_areas())
        await services.registry.refresh(redis)
        seconds = await load_subscribers(redis, n, communities_of(services.registry))
        print(f"loaded {n:,} subscribers in {seconds:.1f} s")
        token = await Accounts(redis, 8192).create_token("bench-chief", ["drafter", "chief"])
        warnings = []
        for _ in range(drafts):
            draft = await services.warnings.create(CHIEF, red_warning(services.warnings.now()))
            warnings.append((draft.id, await SameRequests.of(services, draft)))
    return token, warnings


def serve_env(data_dir: Path, port: int, twilio: str, args: argparse.Namespace) -> dict[str, str]:
    """A default `warncast serve`: only the stand-in, a rate that does not hold it back, the port."""
    env = {
        **clean_env(),
        "WARNCAST_DATA_DIR": str(data_dir),
        "WARNCAST_SECRET_KEY": "bench",
        "WARNCAST_PORT": str(port),
        "WARNCAST_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "WARNCAST_LOG_FORMAT": "text",
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM": SENDER,
        "TWILIO_API_BASE": twilio,
        "WARNCAST_SMS_RATE": str(args.rate),
    }
    if args.serve_concurrency:
        env["WARNCAST_DISPATCH_CONCURRENCY"] = str(args.serve_concurrency)
    return env


class Sampler:
    """py-spy attached to one process, raw (collapsed) stacks to a file, until `stop`."""

    def __init__(self, pid: int, output: Path, rate: int) -> None:
        found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if found is None:
            raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy (it is not a dependency)")
        self.output = output
        self.proc = subprocess.Popen(
            [found, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--output", str(output)]
            + ["--nonblocking"],  # never pauses serve (--native would, at every sample: too slow to measure)
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(output.with_suffix(".log"), "wb"),  # noqa: SIM115 - the child holds it
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its file and exits
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def profile_summary(path: Path, top: int = 10) -> dict[str, Any]:
    """Own time (the frame on top of the stack) and inclusive time per function (lines of one
    function together), and own time per package, from py-spy's raw output: one line per distinct
    stack, `frame;frame;...;frame count`. A coroutine resumed by the event loop's C code is a stack
    of its own (its await chain, without run_app below it), so inclusive time is right for the
    coroutines and the functions they call, not for the frames under the loop (run_app, main)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    charged: Counter[str] = Counter()  # the standard library's time charged to the package that called it
    total = 0
    if not path.exists():
        return {"samples": 0}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [shorten(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += samples
        own[frames[-1]] += samples
        packages[package_of(frames[-1])] += samples
        charged[next((p for p in map(package_of, reversed(frames)) if p not in STDLIB), "standard library")] += samples
        for frame in set(frames):
            inclusive[frame] += samples

    def table(counter: Counter[str], rows: int) -> list[str]:
        return [f"{100 * n / total:5.1f} %  {name}" for name, n in counter.most_common(rows)]

    return {
        "samples": total,
        "own": table(own, top),
        "inclusive": table(inclusive, 2 * top),
        "packages": table(packages, top),
        "charged": table(charged, top),
    }


STDLIB = {"asyncio", "json", "email", "urllib", "dataclasses", "inspect", "typing", "copy", "_weakrefset", "re"}
STDLIB |= {"enum", "functools", "contextlib", "http", "base64", "datetime", "collections", "<string>", "<frozen abc>"}


def shorten(frame: str) -> str:
    """`handler (/work/main/.venv/lib/python3.11/site-packages/aiohttp/web.py:12)` -> `handler (aiohttp/web.py)`"""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3.11/", str(ROOT) + "/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})" if where else name


def package_of(frame: str) -> str:
    """The package (or the standard library module) a shortened frame is in; the event loop's own
    C code shows as run_app (it has no Python frame of its own)."""
    name, _, where = frame.partition(" (")
    if name == "run_app":
        return "event loop (uvloop, C) and socket reads"
    where = where.rstrip(")")
    if where.startswith(("channels/", "publisher/", "foundation/", "citizen_report/", "warncast/")):
        return "warncast: " + where.split("/", 1)[0]
    return where.split("/", 1)[0].removesuffix(".py") if "/" in where else where.removesuffix(".py")


def start_serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(WARNCAST), "serve"],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),  # noqa: SIM115 - the child holds it
    )


def cpu_snapshot(pids: dict[str, int | None]) -> dict[str, float]:
    snapshot = {name: cpu_seconds(pid) if pid else 0.0 for name, pid in pids.items()}
    snapshot["machine"] = machine_cpu_seconds()
    return snapshot


def cpu_shares(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores each process kept busy over `seconds`; `other`: everything else on the machine."""
    used = {name: after[name] - before[name] for name in after}
    used["other"] = max(0.0, used.pop("machine") - sum(used.values()))
    return {name: round(value / seconds, 2) for name, value in used.items()}


async def serve_round(
    http: aiohttp.ClientSession,
    base: str,
    token: str,
    draft_id: str,
    standin: StandIn,
    n: int,
    bare: tuple[float, float],
    pids: dict[str, int | None],
) -> dict[str, Any]:
    """Publish one draft through the API; until the stand-in has a message for every subscriber.
    `bare`: the bare loop's messages per second and CPU seconds per message, moments before."""
    bare_rate, bare_cpu = bare
    await standin.window(http)
    cpu_before = cpu_snapshot(pids)
    published_wall, published = time.time(), time.perf_counter()
    async with http.post(
        f"{base}/api/v1/warnings/{draft_id}/publish",
        json={"reason": "benchmark"},
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        body = await resp.json(content_type=None)
        if resp.status != 200 or body.get("state") != "published":
            raise RuntimeError(f"publish: {resp.status} {body}")
    answered = time.perf_counter() - published
    timeout = max(120.0, 20 * n / bare_rate)
    while time.perf_counter() - published < timeout:
        if (await standin.progress(http))["window_recipients"] >= n:
            break
        await asyncio.sleep(0.05)
    cpu_after = cpu_snapshot(pids)
    elapsed = time.perf_counter() - published
    await asyncio.sleep(1.5)  # late duplicates are counted too
    stats = await standin.stats(http)
    last_ack = (stats["last_at"] or published_wall) - published_wall
    first_ack = (stats["first_at"] or published_wall) - published_wall
    rate = stats["window_recipients"] / last_ack if last_ack > 0 else 0.0
    serve_cpu = (cpu_after["serve"] - cpu_before["serve"]) / max(1, stats["window_received"])
    return {
        "bare_loop_per_second": round(bare_rate),
        "messages_per_second": round(rate),
        "ratio_vs_bare_loop": round(rate / bare_rate, 3),
        "publish_answered_seconds": round(answered, 3),
        "publish_to_first_ack_seconds": round(first_ack, 3),
        "publish_to_last_ack_seconds": round(last_ack, 2),
        "missed_recipients": n - stats["window_recipients"],
        "duplicated_recipients": stats["window_duplicates"],
        "cores_busy_during_fanout": cpu_shares(cpu_before, cpu_after, elapsed),
        "bare_loop_cpu_ms_per_message": round(1000 * bare_cpu, 3),
        "serve_cpu_ms_per_message": round(1000 * serve_cpu, 3),
        "ratio_by_cpu": round(bare_cpu / serve_cpu, 3) if serve_cpu else None,
    }


async def serve_fanout(args: argparse.Namespace) -> None:
    n = args.subscribers or 20_000
    workdir = Path(tempfile.mkdtemp(prefix="wc-bench-serve-"))
    data_dir = workdir / "serve"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    standin = StandIn.start(ACCOUNT, TOKEN, ports=1)
    serve: subprocess.Popen[bytes] | None = None
    sampler: Sampler | None = None
    profile = workdir / "serve-profile.txt"
    concurrency = args.serve_concurrency or Settings.dispatch_concurrency  # the default
    rounds: list[dict[str, Any]] = []
    log = data_dir / "serve.log"
    try:
        token, drafts = await seed_serve(data_dir, base, n, args.rounds)
        async with aiohttp.ClientSession() as http:
            serve = start_serve(serve_env(data_dir, port, standin.url(), args), log)
            deadline = time.monotonic() + 60
            while await readyz(http, base) != 200:
                if serve.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"warncast serve did not get ready; see {log}")
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # every loop in its first round
            redis_pid = next((p for p in children(serve.pid) if process_name(p).startswith("redis")), None)
            pids = {"serve": serve.pid, "redis": redis_pid, "standin": standin.proc.pid, "benchmark": os.getpid()}
            if args.profile:
                sampler = Sampler(serve.pid, profile, args.profile_rate)
                await asyncio.sleep(1.0)  # attached before the first publication
            print(
                f"{n:,} subscribers, one `warncast serve` (dispatch concurrency {concurrency}), "
                f"{args.rounds} rounds of: the bare loop, then a publication through the API"
            )
            for number, (draft_id, same) in enumerate(drafts, start=1):
                # The bare loop first (serve idle), then the fan-out: two runs moments apart.
                cpu = cpu_seconds(os.getpid())
                bare_rate = n / await bare_loop(standin.url(), n, concurrency, same)
                bare_cpu = (cpu_seconds(os.getpid()) - cpu) / n
                result = await serve_round(http, base, token, draft_id, standin, n, (bare_rate, bare_cpu), pids)
                rounds.append(result)
                print(
                    f"  round {number}: bare {bare_rate:6,.0f}/s, serve {result['messages_per_second']:6,} msg/s "
                    f"= {result['ratio_vs_bare_loop']:.0%}; publish to last ack "
                    f"{result['publish_to_last_ack_seconds']} s, missed {result['missed_recipients']}, "
                    f"duplicates {result['duplicated_recipients']}; CPU per message: bare "
                    f"{result['bare_loop_cpu_ms_per_message']} ms, serve {result['serve_cpu_ms_per_message']} ms "
                    f"= {result['ratio_by_cpu']:.0%}; cores busy {result['cores_busy_during_fanout']}"
                )
            if sampler is not None:
                sampler.stop()
    finally:
        if sampler is not None:
            sampler.stop()
        if serve is not None:
            if serve.poll() is None:
                serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(15)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
        standin.stop()
    ratios = [r["ratio_vs_bare_loop"] for r in rounds]
    best_bare = max(r["bare_loop_per_second"] for r in rounds)
    print(
        json.dumps(
            {
                "subscribers": n,
                "serve_processes": 1,
                "dispatch_concurrency": concurrency,
                "rounds": len(rounds),
                "messages_per_second_median": round(statistics.median(r["messages_per_second"] for r in rounds)),
                "bare_loop_per_second_median": round(statistics.median(r["bare_loop_per_second"] for r in rounds)),
                "ratio_vs_bare_loop_median_of_rounds": round(statistics.median(ratios), 3),
                "ratio_best_against_best": round(max(r["messages_per_second"] for r in rounds) / best_bare, 3),
                "ratio_by_cpu_median_of_rounds": round(statistics.median(r["ratio_by_cpu"] or 0 for r in rounds), 3),
                "other_processes_cores_busy_median": statistics.median(
                    r["cores_busy_during_fanout"]["other"] for r in rounds
                ),
                "target": ">= 0.70",
                "missed_recipients": sum(r["missed_recipients"] for r in rounds),
                "duplicated_recipients": sum(r["duplicated_recipients"] for r in rounds),
                "publish_to_first_ack_seconds_median": statistics.median(
                    r["publish_to_first_ack_seconds"] for r in rounds
                ),
                "profiled": bool(args.profile),
                "serve_log": str(log),
            },
            indent=2,
        )
    )
    if args.profile:
        summary = profile_summary(profile)
        if not summary["samples"]:
            print(f"py-spy recorded nothing: see {profile.with_suffix('.log')}")
        print(f"py-spy profile of warncast serve ({summary['samples']} samples at {args.profile_rate}/s, busy only):")
        print("  own time (top of stack):")
        for row in summary.get("own", []):
            print(f"    {row}")
        print("  inclusive time:")
        for row in summary.get("inclusive", []):
            print(f"    {row}")
        print("  own time per package:")
        for row in summary.get("packages", []):
            print(f"    {row}")
        print("  own time per package, the standard library's charged to the package that called it:")
        for row in summary.get("charged", []):
            print(f"    {row}")
        print(f"  raw stacks: {profile}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=None, help="default 100,000 (--serve: 20,000)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=128, help="requests in flight, all workers together")
    parser.add_argument("--rate", type=float, default=1_000_000, help="configured SMS segments per second")
    parser.add_argument("--no-kill", dest="kill", action="store_false")
    parser.add_argument("--latency-samples", type=int, default=10, help="community warnings timed one by one")
    parser.add_argument("--enqueue-only", action="store_true", help="measure publish-to-queued only")
    parser.add_argument("--cluster", action="store_true", help="also on a 3-primary Redis Cluster, and compare")
    parser.add_argument("--serve", action="store_true", help="one `warncast serve` process, published over the API")
    parser.add_argument("--serve-concurrency", type=int, default=0, help="--serve: WARNCAST_DISPATCH_CONCURRENCY")
    parser.add_argument("--profile", action="store_true", help="--serve: sample the serve process with py-spy")
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--rounds", type=int, default=3, help="--serve: bare loop + publication, this many times")
    arguments = parser.parse_args()
    if arguments.serve:
        loops.run(serve_fanout(arguments))
    else:
        arguments.subscribers = arguments.subscribers or 100_000
        loops.run(main(arguments))  # the bare loop runs on the workers' event loop
