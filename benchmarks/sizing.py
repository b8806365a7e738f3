"""Sizing benchmark: what Redis holds per subscriber and per recipient of a city-wide warning.

Imports N residents (CSV through `publisher.subscriber_import`, as `warncast admin
import-subscribers` does) into a fresh embedded redis-server, takes the inventory `warncast admin
stats` prints, then publishes a red warning for the whole city, delivers it to every subscriber
through the real planner and a worker against the local Twilio stand-in, and takes it again:

    .venv/bin/python benchmarks/sizing.py --subscribers 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from foundation.access.audit import Actor  # noqa: E402
from foundation.areas.registry import store_areas  # noqa: E402
from foundation.settings import Settings  # noqa: E402
from foundation.store import keys  # noqa: E402
from foundation.store.connection import EmbeddedRedis, open_redis  # noqa: E402
from foundation.store.inventory import Inventory, render_text, take_inventory  # noqa: E402
from foundation.store.streams import ensure_group  # noqa: E402
from publisher.dispatch.planner import Planner  # noqa: E402
from publisher.dispatch.worker import Worker  # noqa: E402
from publisher.subscriber_import import import_subscribers  # noqa: E402
from warncast.demo_city import demo_areas  # noqa: E402
from warncast.services import Services  # noqa: E402

ACCOUNT, TOKEN = "ACsizing", "sizing-secret"
PER_RECIPIENT = ("delivery_state", "thread_recipients")  # what one more recipient adds (keys.py names)


def start_standin() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.standins.twilio", "--port", "0", "--account", ACCOUNT, "--token", TOKEN],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, f"http://127.0.0.1:{json.loads(proc.stdout.readline())['port']}"


def residents_csv(services: Services, n: int) -> str:
    communities = [a.code for a in services.registry.areas if a.level == "community"]
    rows = ["channel,address,area,language,min_grade"]
    for i in range(n):
        rows.append(f"sms,+86139{i:08d},{communities[i % len(communities)]},{'zh' if i % 3 else 'en'},orange")
    return "\n".join(rows) + "\n"


def family_bytes(inventory: Inventory, name: str) -> int:
    return inventory.counts[name].bytes


async def deliver_city_wide(services: Services) -> str:
    chief = Actor("sizing-chief", frozenset({"chief"}))
    body = {
        "grade": "red",
        "event": "rainstorm",
        "areas": ["990100"],
        "expires": (services.warnings.now() + timedelta(hours=6)).isoformat(),
        "info": {
            "zh-CN": {"headline": "全市暴雨红色预警", "description": "特大暴雨。", "instruction": "停止户外活动。"},
            "en": {
                "headline": "City-wide red rainstorm warning",
                "description": "Extreme rain.",
                "instruction": "Stay in.",
            },
        },
    }
    await ensure_group(services.redis, keys.WARNINGS_EVENTS, keys.PLANNER_GROUP)
    await ensure_group(services.redis, keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP)
    draft = await services.warnings.create(chief, body)
    message = await services.warnings.fast_path(chief, draft.id, "sizing")
    planner, worker = Planner(services.dispatch, "sizing"), Worker(services.dispatch, "sizing")
    while await planner.run_once() or await worker.run_once(count=16):
        pass
    return message.id


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="wc-sizing-"))
    server = EmbeddedRedis(workdir / "redis", fsync="everysec")
    server.start()
    standin, twilio = start_standin()
    try:
        settings = Settings(
            redis_url=server.url,
            data_dir=workdir,
            secret_key="sizing",
            log_json=False,
            twilio_account_sid=ACCOUNT,
            twilio_auth_token=TOKEN,
            twilio_from="+15550001111",
            twilio_api_base=twilio,
            sms_rate=1_000_000.0,
        )
        async with open_redis(settings) as redis:
            services = await Services.build(settings, redis)
            await store_areas(redis, demo_areas())
            await services.registry.refresh(redis)
            started = time.perf_counter()
            report = await import_subscribers(services.subscribers, services.registry, residents_csv(services, args.n))
            assert not report.errors, report.errors[:3]
            print(f"imported {report.imported:,} subscribers in {time.perf_counter() - started:.0f} s\n")
            started = time.perf_counter()
            before = await take_inventory(redis)
            print(render_text(before), f"\n(the inventory took {time.perf_counter() - started:.1f} s)\n")

            await services.start_channels()
            started = time.perf_counter()
            message_id = await deliver_city_wide(services)
            stats = await redis.hgetall(keys.delivery_stats(message_id))
            await services.close_channels()
            sent = int(stats.get("sms.sent", 0))
            print(
                f"delivered a city-wide red warning to {sent:,} recipients in {time.perf_counter() - started:.0f} s\n"
            )
            started = time.perf_counter()
            after = await take_inventory(redis)
            print(render_text(after), f"\n(the inventory took {time.perf_counter() - started:.1f} s)\n")
            per_recipient = {name: family_bytes(after, name) / sent for name in PER_RECIPIENT}
            per_subscriber = before.bytes_per_subscriber()
            assert per_subscriber is not None
            figures = {
                "subscribers": before.subscribers,
                "bytes_per_subscriber": round(per_subscriber[0]),
                "all_bytes_per_subscriber": round(per_subscriber[1]),
                "used_memory_per_subscriber": round(before.used_memory / before.subscribers),
                "recipients": sent,
                "bytes_per_recipient": {name: round(value) for name, value in per_recipient.items()},
                "bytes_per_recipient_total": round(sum(per_recipient.values())),
                "used_memory_per_recipient": round((after.used_memory - before.used_memory) / sent),
            }
            print(json.dumps(figures, indent=2))
    finally:
        standin.terminate()
        standin.wait(10)
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", dest="n", type=int, default=100_000)
    asyncio.run(main(parser.parse_args()))
