"""A million SMS subscribers on a 3-primary Redis Cluster and on the embedded server, in the same run:
how fast they load, what each costs in memory, how the keys spread over the primaries, and how long
the planner takes to queue a city-wide red warning for all of them (publication to every segment on
the dispatch queue, as `benchmarks/fanout.py --enqueue-only` measures it; target < 5 s).

    .venv/bin/python benchmarks/subscribers.py                        # 1,000,000 subscribers
    .venv/bin/python benchmarks/subscribers.py --subscribers 20000    # a smoke test, well under a minute

- Loading writes what `publisher.subscribers.Subscribers.save` writes for an active subscriber (the
  hash `Subscriber.to_hash()` under `keys.subscriber`, its address in `keys.area_subscribers` of its
  area and grade) through raw pipelines, grouped per node on the cluster (benchlib.load_subscribers).
- Bytes per subscriber, two ways: the growth of INFO memory `used_memory` summed over the primaries,
  and MEMORY USAGE (a sample of the subscriber hashes, scaled up, plus every index set counted whole).
  The bundled redis-server is built with libc malloc, not jemalloc: absolute bytes differ from a
  production build's, the comparison between the two layouts does not.
- Spread: keys and bytes added per primary (DBSIZE and used_memory, before and after the load).
- Enqueue: `--rounds` warnings, the two stores in turn, the queue emptied between rounds (no
  workers run); the median of each, and cluster / standalone per round.

Both stores use the append-only file with appendfsync always (the embedded server's default).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import communities_of, load_subscribers, measure_enqueue, primary_figures, start_cluster  # noqa: E402

from foundation import loops  # noqa: E402
from foundation.areas.registry import store_areas  # noqa: E402
from foundation.settings import Settings  # noqa: E402
from foundation.store import keys  # noqa: E402
from foundation.store.connection import EmbeddedRedis, open_redis  # noqa: E402
from publisher.taxonomy import GRADES  # noqa: E402
from warncast.demo_city import demo_areas  # noqa: E402
from warncast.services import Services  # noqa: E402

SAMPLE = 2_000  # subscriber hashes whose MEMORY USAGE is measured


async def usage_of(redis: Any, names: list[str], samples: int | None = None) -> list[int]:
    """MEMORY USAGE of each key (0 when it does not exist), 100 at a time."""
    found: list[int] = []
    for start in range(0, len(names), 100):
        found += await asyncio.gather(*(redis.memory_usage(key, samples=samples) for key in names[start : start + 100]))
    return [size or 0 for size in found]


async def memory_usage(redis: Any, n: int, communities: list[str]) -> dict[str, float]:
    """MEMORY USAGE: sampled subscriber hashes (scaled to n) plus every index set, whole."""
    step = max(1, n // SAMPLE)
    sampled = [keys.subscriber("sms", f"+86139{i:08d}") for i in range(0, n, step)]
    per_hash = statistics.fmean(await usage_of(redis, sampled))
    index_keys = [keys.area_subscribers(area, "sms", grade) for area in communities for grade in GRADES]
    index_bytes = sum(await usage_of(redis, index_keys, samples=0))
    return {
        "subscriber_hash_bytes": round(per_hash, 1),
        "index_bytes_per_subscriber": round(index_bytes / n, 1),
        "bytes_per_subscriber": round(per_hash + index_bytes / n, 1),
    }


async def load(label: str, services: Services, n: int) -> dict[str, Any]:
    redis = services.redis
    await store_areas(redis, demo_areas())
    await services.registry.refresh(redis)
    communities = communities_of(services.registry)
    before = await primary_figures(redis)
    seconds = await load_subscribers(redis, n, communities)
    await asyncio.sleep(0.5)  # let the server settle (client buffers drained)
    after = await primary_figures(redis)
    growth = {node: after[node]["used_memory"] - before[node]["used_memory"] for node in after}
    added = {node: after[node]["keys"] - before[node]["keys"] for node in after}
    usage = await memory_usage(redis, n, communities)
    result = {
        "redis": label,
        "subscribers": n,
        "load_seconds": round(seconds, 1),
        "subscribers_per_second": round(n / seconds),
        "bytes_per_subscriber_used_memory": round(sum(growth.values()) / n, 1),
        "bytes_per_subscriber_memory_usage": usage["bytes_per_subscriber"],
        "memory_usage": usage,
        "used_memory_growth_mb": round(sum(growth.values()) / 2**20, 1),
        "per_primary": {
            node: {
                "keys_added": added[node],
                "keys_share": round(added[node] / max(1, sum(added.values())), 3),
                "used_memory_growth_mb": round(growth[node] / 2**20, 1),
                "bytes_share": round(growth[node] / max(1, sum(growth.values())), 3),
            }
            for node in after
        },
    }
    print(f"[{label}] loaded {n:,} subscribers in {seconds:.1f} s ({n / seconds:,.0f}/s)")
    return result


async def enqueue_round(services: Services) -> dict[str, Any]:
    figures = await measure_enqueue(services)
    queue_bytes = await services.redis.memory_usage(keys.DISPATCH_QUEUE, samples=0)
    figures["queue_bytes_per_recipient"] = round((queue_bytes or 0) / max(1, figures["planned"]), 1)
    await services.redis.delete(keys.DISPATCH_QUEUE)  # the next round starts from an empty queue
    return figures


async def main(args: argparse.Namespace) -> None:
    n = args.subscribers
    workdir = Path(tempfile.mkdtemp(prefix="wc-bench-subs-"))
    embedded = EmbeddedRedis(workdir / "redis")
    cluster = None
    try:
        embedded.start()
        cluster = await asyncio.to_thread(start_cluster, "always")
        async with contextlib.AsyncExitStack() as stack:
            stores: dict[str, Services] = {}
            for label, url in (("standalone", embedded.url), ("cluster", cluster.url)):
                settings = Settings(redis_url=url, data_dir=workdir / label, secret_key="bench", log_json=False)
                redis = await stack.enter_async_context(open_redis(settings))
                stores[label] = await Services.build(settings, redis)
            loaded = {label: await load(label, services, n) for label, services in stores.items()}

            rounds: dict[str, list[dict[str, Any]]] = {label: [] for label in stores}
            ratios = []
            for number in range(1, args.rounds + 1):
                for label, services in stores.items():
                    rounds[label].append(await enqueue_round(services))
                single, multi = rounds["standalone"][-1], rounds["cluster"][-1]
                ratios.append(multi["enqueue_seconds"] / single["enqueue_seconds"])
                print(
                    f"  enqueue round {number}: standalone {single['enqueue_seconds']:.2f} s, "
                    f"cluster {multi['enqueue_seconds']:.2f} s ({multi['segments']} segments each)"
                )
        for label, result in loaded.items():
            times = [r["enqueue_seconds"] for r in rounds[label]]
            result["enqueue"] = {
                "planned": rounds[label][-1]["planned"],
                "segments": rounds[label][-1]["segments"],
                "seconds_per_round": times,
                "median_seconds": round(statistics.median(times), 3),
                "recipients_per_second": round(rounds[label][-1]["planned"] / statistics.median(times)),
                "queue_bytes_per_recipient": rounds[label][-1]["queue_bytes_per_recipient"],
                "target": "< 5 s",
            }
            print(json.dumps(result, indent=2))
        single_load, multi_load = loaded["standalone"], loaded["cluster"]
        print(
            json.dumps(
                {
                    "cluster_vs_standalone": {
                        "enqueue_seconds_ratio_median_of_rounds": round(statistics.median(ratios), 3),
                        "load_speed_ratio": round(
                            multi_load["subscribers_per_second"] / single_load["subscribers_per_second"], 3
                        ),
                        "bytes_per_subscriber_ratio_used_memory": round(
                            multi_load["bytes_per_subscriber_used_memory"]
                            / single_load["bytes_per_subscriber_used_memory"],
                            3,
                        ),
                    },
                    "enqueue_median_seconds": {
                        label: result["enqueue"]["median_seconds"] for label, result in loaded.items()
                    },
                    "enqueue_target": "< 5 s",
                },
                indent=2,
            )
        )
    finally:
        embedded.stop()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="enqueue measurements per store, alternating")
    started = time.perf_counter()
    loops.run(main(parser.parse_args()))
    print(f"({time.perf_counter() - started:.0f} s in all)")
