"""Fan-out benchmark: N SMS subscribers, one red warning, real workers and the real twilio client
against the local Twilio stand-in, compared with a bare aiohttp client loop posting the same requests
(same texts, fields and headers, as many, as many at once) to the same stand-in in the same run,
before and after the dispatch (the better of the two counts: this machine is shared). Midway one
worker is killed with SIGKILL and a new one started; the stand-in then tells how many recipients
were missed or got duplicates. Then a series of community warnings times publish-to-first-delivery.

    .venv/bin/python benchmarks/fanout.py --subscribers 100000
    .venv/bin/python benchmarks/fanout.py --subscribers 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from foundation import loops  # noqa: E402
from foundation.access.audit import Actor  # noqa: E402
from foundation.areas.registry import store_areas  # noqa: E402
from foundation.settings import Settings  # noqa: E402
from foundation.store import keys  # noqa: E402
from foundation.store.connection import EmbeddedRedis, open_redis  # noqa: E402
from publisher.model import Message  # noqa: E402
from publisher.subscribers import Subscriber  # noqa: E402
from warncast.demo_city import demo_areas  # noqa: E402
from warncast.services import Services  # noqa: E402

ACCOUNT, TOKEN, SENDER = "ACbench", "bench-secret", "+15550001111"


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def start_standin() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.standins.twilio", "--port", "0", "--account", ACCOUNT, "--token", TOKEN],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = json.loads(proc.stdout.readline())["port"]
    return proc, f"http://127.0.0.1:{port}"


async def standin_stats(session: aiohttp.ClientSession, base: str) -> dict[str, int]:
    async with session.get(f"{base}/stats") as resp:
        return await resp.json()


async def load_subscribers(services: Services, n: int) -> None:
    communities = [a.code for a in services.registry.areas if a.level == "community"]
    batch = 10_000
    for start in range(0, n, batch):
        async with services.redis.pipeline(transaction=False) as pipe:
            for i in range(start, min(n, start + batch)):
                phone = f"+86139{i:08d}"
                area = communities[i % len(communities)]
                sub = Subscriber(
                    "sms", phone, status="active", areas=[area], lang="zh_Hans" if i % 3 else "en", source="bench"
                )
                pipe.hset(keys.subscriber("sms", phone), mapping=sub.to_hash())
                pipe.sadd(keys.area_subscribers(area, "sms", sub.min_grade), phone)
            await pipe.execute()


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


def worker_env(redis_url: str, twilio: str, args: argparse.Namespace, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
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
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "warncast"), "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(data_log(env), "ab"),
    )


def red_warning(services: Services, area: str = "990100") -> dict:
    return {
        "grade": "red",
        "event": "rainstorm",
        "areas": [area],
        "expires": (services.warnings.now() + timedelta(hours=6)).isoformat(),
        "info": {
            "zh-CN": {"headline": "全市暴雨红色预警", "description": "特大暴雨。", "instruction": "停止户外活动。"},
            "en": {
                "headline": "City-wide red rainstorm warning",
                "description": "Extreme rain.",
                "instruction": "Stop outdoor activities.",
            },
        },
    }


async def first_delivery_latencies(services: Services, samples: int) -> list[float]:
    """Seconds from publication to the first accepted message, for warnings to one community each
    (about N/56 recipients), published one after another on otherwise idle workers."""
    chief = Actor("bench-chief", frozenset({"chief"}))
    communities = [a.code for a in services.registry.areas if a.level == "community"]
    latencies = []
    for i in range(samples):
        draft = await services.warnings.create(chief, red_warning(services, communities[i % len(communities)]))
        message = await services.warnings.fast_path(chief, draft.id, "benchmark")
        while True:
            stats = await services.redis.hgetall(keys.delivery_stats(message.id))
            planned = int(stats.get("sms.planned", 0))
            if planned and int(stats.get("sms.sent", 0)) >= planned:
                break
            await asyncio.sleep(0.02)
        latencies.append((int(stats["sms.first_at"]) - int(stats["published_at"])) / 1000)
    return sorted(latencies)


async def enqueue_only(services: Services, n: int) -> None:
    """Publish and plan in this process (no workers): how long until every recipient is queued."""
    from foundation.store.streams import ensure_group
    from publisher.dispatch.planner import Planner

    chief = Actor("bench-chief", frozenset({"chief"}))
    draft = await services.warnings.create(chief, red_warning(services))
    await ensure_group(services.redis, keys.WARNINGS_EVENTS, keys.PLANNER_GROUP)
    started = time.perf_counter()
    await services.warnings.fast_path(chief, draft.id, "benchmark")
    await Planner(services.dispatch, "bench").run_once()
    seconds = time.perf_counter() - started
    segments = await services.redis.xlen(keys.DISPATCH_QUEUE)
    print(
        json.dumps(
            {
                "subscribers": n,
                "enqueue_seconds": round(seconds, 2),
                "segments": segments,
                "recipients_per_second": round(n / seconds),
            },
            indent=2,
        )
    )


async def main(args: argparse.Namespace) -> None:
    n = args.subscribers
    workdir = Path(tempfile.mkdtemp(prefix="wc-bench-"))
    redis_server = EmbeddedRedis(workdir / "redis")
    redis_server.start()
    standin, twilio = start_standin()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        settings = Settings(redis_url=redis_server.url, data_dir=workdir, secret_key="bench", log_json=False)
        async with open_redis(settings) as redis, aiohttp.ClientSession() as http:
            services = await Services.build(settings, redis)
            await store_areas(redis, demo_areas())
            await services.registry.refresh(redis)
            started = time.perf_counter()
            await load_subscribers(services, n)
            print(f"loaded {n:,} subscribers in {time.perf_counter() - started:.1f} s")

            if args.enqueue_only:
                await enqueue_only(services, n)
                return
            chief = Actor("bench-chief", frozenset({"chief"}))
            draft = await services.warnings.create(chief, red_warning(services))
            same = await SameRequests.of(services, draft)
            bare_seconds = await bare_loop(twilio, n, args.concurrency, same)
            baseline = await standin_stats(http, twilio)
            print(f"bare aiohttp loop: {n:,} requests in {bare_seconds:.1f} s = {n / bare_seconds:,.0f}/s")

            env = worker_env(redis_server.url, twilio, args, workdir)
            workers = [start_worker(env) for _ in range(args.workers)]
            await asyncio.sleep(2)  # workers connect and join the consumer groups

            published_at = time.perf_counter()
            message = await services.warnings.fast_path(chief, draft.id, "benchmark")
            while not await redis.hget(keys.plan(message.id), "done"):  # noqa: ASYNC110 (other processes)
                await asyncio.sleep(0.01)
            enqueue_wall = time.perf_counter() - published_at
            planner_seconds = float(await redis.hget(keys.plan(message.id), "seconds") or 0)

            killed = False
            while True:
                stats = await redis.hgetall(keys.delivery_stats(message.id))
                done = sum(int(stats.get(f"sms.{k}", 0)) for k in ("sent", "failed", "dead"))
                planned = int(stats.get("sms.planned", 0))
                if args.kill and not killed and done >= planned * 0.4:
                    workers[0].send_signal(signal.SIGKILL)
                    workers[0].wait()
                    workers[0] = start_worker(env)
                    killed = True
                    print(f"killed a worker with SIGKILL at {done:,} deliveries and started another")
                pending = (await redis.xpending(keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP))["pending"]
                queued = await redis.xlen(keys.DISPATCH_QUEUE)
                if planned and done >= planned and not pending and not queued:
                    break
                await asyncio.sleep(0.05)
            dispatch_seconds = time.perf_counter() - published_at
            after = await standin_stats(http, twilio)
            peak_workers = max(peak_rss_mb(w.pid) for w in workers)
            latencies = await first_delivery_latencies(services, args.latency_samples)
            for worker in workers:
                worker.send_signal(signal.SIGTERM)  # idle now; the second baseline gets the machine
            # The machine is shared and noisy: the baseline runs before and after, and its better
            # figure is the one we compare with.
            bare_after = await bare_loop(twilio, n, args.concurrency, same)
            print(f"bare aiohttp loop again: {n:,} requests in {bare_after:.1f} s = {n / bare_after:,.0f}/s")
            bare_seconds = min(bare_seconds, bare_after)
            received = after["received"] - baseline["received"]
            recipients = after["recipients"] - baseline["recipients"]
            duplicates = after["duplicates"] - baseline["duplicates"]
            first = (int(stats["sms.first_at"]) - int(stats["published_at"])) / 1000
            peak_redis = peak_rss_mb(redis_server.process.pid) if redis_server.process else 0

            rate = received / dispatch_seconds
            bare_rate = n / bare_seconds
            print(
                json.dumps(
                    {
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
                        "peak_rss_mb_worker": round(peak_workers),
                        "peak_rss_mb_redis": round(peak_redis),
                    },
                    indent=2,
                )
            )
    finally:
        print(f"worker logs: {workdir / 'workers.log'}")
        for worker in workers:
            worker.kill()
            worker.wait()
        standin.kill()
        standin.wait()
        redis_server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=128, help="requests in flight, all workers together")
    parser.add_argument("--rate", type=float, default=1_000_000, help="configured SMS segments per second")
    parser.add_argument("--no-kill", dest="kill", action="store_false")
    parser.add_argument("--latency-samples", type=int, default=10, help="community warnings timed one by one")
    parser.add_argument("--enqueue-only", action="store_true", help="measure publish-to-queued only")
    loops.run(main(parser.parse_args()))  # the bare loop runs on the workers' event loop
