"""What signing adds to a published CAP message: the demo city's city-wide red warning (both
languages, the city's polygon) rendered N times without and with the XML signature, in this
one process, alternating rounds so both see the same machine. Goal: at most 5 ms per message.

    .venv/bin/python benchmarks/cap_signing.py [--messages 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from foundation.access.audit import Actor  # noqa: E402
from foundation.areas.registry import store_areas  # noqa: E402
from foundation.settings import Settings  # noqa: E402
from foundation.store.connection import EmbeddedRedis, open_redis  # noqa: E402
from publisher.cap_xml import render_cap  # noqa: E402
from warncast.demo_city import demo_areas  # noqa: E402
from warncast.services import Services  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from benchlib import red_warning  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="wc-capsign-"))
    server = EmbeddedRedis(workdir / "redis", fsync="everysec")
    server.start()
    try:
        settings = Settings(redis_url=server.url, data_dir=workdir, secret_key="bench", log_json=False)
        async with open_redis(settings) as redis:
            services = await Services.build(settings, redis)
            await store_areas(redis, demo_areas())
            await services.registry.refresh(redis)
            chief = Actor("chief", frozenset({"chief"}))
            draft = await services.warnings.create(chief, red_warning(services.warnings.now()))
            message = await services.warnings.fast_path(chief, draft.id, "bench")

            def render(signed: bool) -> float:
                started = time.perf_counter()
                for _ in range(args.messages):
                    document = render_cap(
                        message,
                        references=[],
                        registry=services.registry,
                        settings=settings,
                        catalogs=services.catalogs,
                        signer=services.cap_signer if signed else None,
                    )
                return (time.perf_counter() - started) / args.messages * 1000, len(document)

            plain, signed = [], []
            for _ in range(args.rounds):
                plain.append(render(False))
                signed.append(render(True))
    finally:
        server.stop()
    plain_ms = statistics.median(ms for ms, _ in plain)
    signed_ms = statistics.median(ms for ms, _ in signed)
    print(f"CAP of a city-wide red warning: {plain[0][1]:,} bytes unsigned, {signed[0][1]:,} bytes signed")
    print(f"render, unsigned: {plain_ms:.2f} ms per message (median of {args.rounds} rounds of {args.messages})")
    print(f"render and sign:  {signed_ms:.2f} ms per message")
    added = signed_ms - plain_ms
    print(f"signing adds {added:.2f} ms per message (goal <= 5 ms): {'met' if added <= 5 else 'MISSED'}")
    print(f"ratio signed/unsigned: {signed_ms / plain_ms:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
