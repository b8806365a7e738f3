"""What the benchmarks share: the Twilio stand-in process (benchmarks/standin.py), a 3-primary Redis
Cluster set up like the embedded server, a fast subscriber loader, per-primary figures (keys, memory,
CPU), per-process CPU time, and the planner's publish-to-queued measurement.

Not a benchmark itself: fanout.py, intake.py and subscribers.py import it (they run with this
folder first on sys.path).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import Any

import aiohttp
import redis as sync_redis
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from foundation.store import keys  # noqa: E402
from foundation.store.cluster import primaries  # noqa: E402
from foundation.store.raw_pipeline import Command, execute_raw  # noqa: E402
from publisher.subscribers import Subscriber  # noqa: E402
from tests.redis_cluster import LocalCluster  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# Processes


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy (every core, every process), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """The direct children of a process (e.g. the embedded redis-server of `warncast serve`)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(p) for p in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


# The Twilio stand-in


@dataclass
class StandIn:
    """benchmarks/standin.py in its own process, on `ports` ports (one per dispatch process)."""

    proc: subprocess.Popen[str]
    ports: list[int]

    @classmethod
    def start(cls, account: str, token: str, ports: int = 1) -> StandIn:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "standin.py"), "--ports", str(ports)]
            + ["--account", account, "--token", token],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        return cls(proc, json.loads(proc.stdout.readline())["ports"])

    def url(self, slot: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[slot % len(self.ports)]}"

    async def stats(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(f"{self.url()}/stats") as resp:
            return await resp.json()

    async def progress(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(f"{self.url()}/progress") as resp:
            return await resp.json()

    async def window(self, http: aiohttp.ClientSession) -> None:
        async with http.post(f"{self.url()}/window") as resp:
            await resp.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# Redis Cluster


def start_cluster(fsync: str = "always", masters: int = 3) -> LocalCluster:
    """tests/redis_cluster.py's LocalCluster (no replicas) with the embedded server's persistence:
    the append-only file on and `appendfsync <fsync>` on every node, so that a comparison with the
    embedded server compares like with like (only the transport differs: TCP to each node, where
    the embedded server is on a unix socket)."""
    cluster = LocalCluster(masters=masters, replicas=0, appendonly=True).start()
    for node in cluster.nodes:
        client = node.client()
        try:
            client.config_set("appendfsync", fsync)
        finally:
            client.close()
    return cluster


@dataclass
class Replicated:
    """A standalone primary and its replica (bundled redis-server, TCP on 127.0.0.1)."""

    processes: list[subprocess.Popen[bytes]]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()


def start_replicated(directory: Path, fsync: str = "always", timeout: float = 30.0) -> Replicated:
    """A primary with one replica, both with the append-only file on and `appendfsync <fsync>`;
    returns once the replica is in sync."""
    from foundation.store.connection import redis_server_binary
    from tests.redis_cluster import free_port

    ports = [free_port(), free_port()]
    processes = []
    for role, port in zip(("primary", "replica"), ports, strict=True):
        (directory / role).mkdir(parents=True)
        args = [str(redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory / role)]
        args += ["--save", "", "--appendonly", "yes", "--appendfsync", fsync]
        if role == "replica":
            args += ["--replicaof", "127.0.0.1", str(ports[0])]
        processes.append(subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
    replicated = Replicated(processes, ports[0])
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = sync_redis.Redis(port=ports[0], socket_timeout=2, decode_responses=True)
            info = client.info("replication")
            client.close()
            if int(info.get("connected_slaves", 0)) and info["slave0"]["state"] == "online":
                return replicated
        except sync_redis.RedisError:
            pass
        if time.monotonic() > deadline:
            replicated.stop()
            raise RuntimeError("the replica did not sync")
        time.sleep(0.05)


def restart_cluster_node(cluster: LocalCluster, port: int, fsync: str, timeout: float = 30.0) -> None:
    """Start a (killed) node again in place: same port, directory, nodes.conf and append-only file."""
    node = next(n for n in cluster.nodes if n.port == port)
    node.proc = subprocess.Popen([*node.args(True), "--appendfsync", fsync], stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not cluster.settled():
        if time.monotonic() > deadline:
            raise RuntimeError(f"cluster node {port} did not come back")
        time.sleep(0.05)


def node_of_key(cluster: LocalCluster, key: str) -> int:
    """The port of the primary serving `key`."""
    client = sync_redis.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    try:
        return int(client.get_node_from_key(key).port)
    finally:
        client.close()


async def per_primary(redis: aioredis.Redis, *command: str) -> list[tuple[str, Any]]:
    """`command` on every primary (the one server of a standalone Redis): (node, reply) each."""
    nodes = await primaries(redis)
    if nodes is None:
        return [("standalone", await redis.execute_command(*command))]
    return [(node.name, await redis.execute_command(*command, target_nodes=node)) for node in nodes]


async def primary_figures(redis: aioredis.Redis) -> dict[str, dict[str, float]]:
    """Keys, used memory (bytes) and CPU seconds (user + system) of every primary."""
    sizes = dict(await per_primary(redis, "DBSIZE"))
    memory = dict(await per_primary(redis, "INFO", "memory"))
    cpu = dict(await per_primary(redis, "INFO", "cpu"))
    return {
        node: {
            "keys": int(sizes[node]),
            "used_memory": int(memory[node]["used_memory"]),
            "cpu_seconds": float(cpu[node]["used_cpu_sys"]) + float(cpu[node]["used_cpu_user"]),
        }
        for node in sizes
    }


# Subscribers


def subscriber_commands(start: int, end: int, communities: Sequence[str], prefix: str = "+86139") -> list[Command]:
    """What `publisher.subscribers.Subscribers.save` writes for active SMS subscribers start..end-1
    (the record hash, from `Subscriber.to_hash()`, and the area index set of its grade), as raw
    commands: one HSET each, one SADD per index set for the whole range."""
    commands: list[Command] = []
    members: dict[str, list[str]] = defaultdict(list)
    for i in range(start, end):
        phone = f"{prefix}{i:08d}"
        area = communities[i % len(communities)]
        sub = Subscriber("sms", phone, status="active", areas=[area], lang="zh_Hans" if i % 3 else "en", source="bench")
        commands.append(("HSET", keys.subscriber("sms", phone), *chain.from_iterable(sub.to_hash().items())))
        for a in sub.areas:  # publisher.subscribers._index
            members[keys.area_subscribers(a, sub.channel, sub.min_grade)].append(phone)
            if sub.drill:
                members[keys.area_drill_subscribers(a, sub.channel)].append(phone)
    commands += [("SADD", key, *phones) for key, phones in members.items()]
    return commands


async def load_subscribers(
    redis: aioredis.Redis,
    n: int,
    communities: Sequence[str],
    *,
    prefix: str = "+86139",
    batch: int = 5_000,
    in_flight: int = 4,
) -> float:
    """Write `n` active SMS subscribers spread over `communities` through raw pipelines (grouped per
    node on a cluster), `in_flight` batches at a time. Returns the seconds it took."""
    started = time.perf_counter()
    gate = asyncio.Semaphore(in_flight)

    async def one(start: int) -> None:
        async with gate:
            commands = subscriber_commands(start, min(n, start + batch), communities, prefix)
            for reply in await execute_raw(redis, commands):
                if isinstance(reply, Exception):
                    raise reply

    await asyncio.gather(*(one(start) for start in range(0, n, batch)))
    return time.perf_counter() - started


def communities_of(registry: Any) -> list[str]:
    return [a.code for a in registry.areas if a.level == "community"]


# Warnings and the planner


def red_warning(now: datetime, area: str = "990100") -> dict[str, Any]:
    """A city-wide (990100) red rainstorm warning in both languages, valid 6 hours."""
    return {
        "grade": "red",
        "event": "rainstorm",
        "areas": [area],
        "expires": (now + timedelta(hours=6)).isoformat(),
        "info": {
            "zh-CN": {"headline": "全市暴雨红色预警", "description": "特大暴雨。", "instruction": "停止户外活动。"},
            "en": {
                "headline": "City-wide red rainstorm warning",
                "description": "Extreme rain.",
                "instruction": "Stop outdoor activities.",
            },
        },
    }


async def measure_enqueue(services: Any, area: str = "990100") -> dict[str, Any]:
    """Publish a red warning and plan it in this process (no workers): the seconds from publication
    until every recipient is on the dispatch queue, and how many segments that is."""
    from foundation.access.audit import Actor
    from foundation.store.streams import ensure_group
    from publisher.dispatch.planner import Planner

    chief = Actor("bench-chief", frozenset({"chief"}))
    draft = await services.warnings.create(chief, red_warning(services.warnings.now(), area))
    await ensure_group(services.redis, keys.WARNINGS_EVENTS, keys.PLANNER_GROUP)
    queued_before = await services.redis.xlen(keys.DISPATCH_QUEUE)
    started = time.perf_counter()
    message = await services.warnings.fast_path(chief, draft.id, "benchmark")
    await Planner(services.dispatch, "bench").run_once()
    seconds = time.perf_counter() - started
    stats = await services.redis.hgetall(keys.delivery_stats(message.id))
    planned = int(stats.get("sms.planned", 0))
    return {
        "planned": planned,
        "enqueue_seconds": round(seconds, 3),
        "segments": await services.redis.xlen(keys.DISPATCH_QUEUE) - queued_before,
        "recipients_per_second": round(planned / seconds) if seconds else None,
    }
