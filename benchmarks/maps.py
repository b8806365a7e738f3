"""The compose page's map with a synthetic registry of 5,000 areas (issue 17).

A city of 1 + 10 districts + 100 streets + 4,900 communities, each a rectangle whose edges carry
many surveyed points (default 40 a side, with a little noise), is loaded into a fresh redis-server;
a real `create_app` serves it. Prints:

1. the GeoJSON the maps load: raw (`?zoom=raw`) against simplified for the zoom the compose page
   starts at and a few more, in bytes and gzip'd bytes, with the time the server took;
2. the compose page's time to interactive in Debian's chromium: from navigation start until the
   map has drawn every area and takes clicks (map.js sets `data-ready`), and DOMContentLoaded
   (the list picker usable); median of `--rounds` cold page loads (target: within 1 s).

    .venv/bin/python benchmarks/maps.py [--points 40] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import multiprocessing as mp
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

GRID = 70  # communities per side: 4,900
STREET = 7  # communities per street side: 10 x 10 streets
DISTRICT = (35, 14)  # communities per district (lon, lat): 2 x 5 districts
WEST, SOUTH, SIZE = 121.0, 30.5, 0.7  # degrees


def rectangle(x0: float, y0: float, x1: float, y1: float, points: int, rng: random.Random) -> list[list[float]]:
    """A closed [lat, lon] ring along the rectangle's edges, `points` per side, jittered by ~1 m."""
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    ring = []
    for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1], strict=True):
        for i in range(points):
            t = i / points
            jitter = rng.uniform(-1e-5, 1e-5) if i else 0.0  # corners stay exact: the ring stays simple
            x, y = ax + (bx - ax) * t, ay + (by - ay) * t
            if ay == by:
                y += jitter
            else:
                x += jitter
            ring.append([round(y, 7), round(x, 7)])
    return [*ring, ring[0]]


def synthetic_registry(points: int) -> list[dict]:
    rng = random.Random(17)
    step = SIZE / GRID

    def box(cx: int, cy: int, w: int, h: int, n: int) -> list[list[float]]:
        return rectangle(WEST + cx * step, SOUTH + cy * step, WEST + (cx + w) * step, SOUTH + (cy + h) * step, n, rng)

    records = [{"code": "990100", "level": "city", "parent": None, "name": {"en": "Synthetic city", "zh-CN": "合成市"},
                "polygon": box(0, 0, GRID, GRID, points * 4)}]  # fmt: skip
    for dx in range(GRID // DISTRICT[0]):
        for dy in range(GRID // DISTRICT[1]):
            d = f"9901{dx * 5 + dy + 1:02d}"
            records.append({"code": d, "level": "district", "parent": "990100", "name": {"en": f"District {d}"},
                            "polygon": box(dx * DISTRICT[0], dy * DISTRICT[1], *DISTRICT, points * 2)})  # fmt: skip
            for sx in range(DISTRICT[0] // STREET):
                for sy in range(DISTRICT[1] // STREET):
                    s = f"{d}{sx * 2 + sy + 1:03d}"
                    ox, oy = dx * DISTRICT[0] + sx * STREET, dy * DISTRICT[1] + sy * STREET
                    records.append({"code": s, "level": "street", "parent": d, "name": {"en": f"Street {s}"},
                                    "polygon": box(ox, oy, STREET, STREET, points)})  # fmt: skip
                    for cx in range(STREET):
                        for cy in range(STREET):
                            c = f"{s}{cx * STREET + cy + 1:03d}"
                            records.append({"code": c, "level": "community", "parent": s,
                                            "name": {"en": f"Community {c}", "zh-CN": f"社区{c[-5:]}"},
                                            "polygon": box(ox + cx, oy + cy, 1, 1, points)})  # fmt: skip
    return records


def serve_app(redis_url: str, port: int) -> None:
    from foundation.settings import Settings
    from warncast.web.app import create_app

    settings = Settings(redis_url=redis_url, secret_key="bench", log_json=False, public_url=f"http://127.0.0.1:{port}")
    web.run_app(create_app(settings), host="127.0.0.1", port=port, print=None, access_log=None)


async def setup(redis_url: str, points: int) -> int:
    import redis.asyncio as aioredis

    from foundation.access.auth import Accounts
    from foundation.areas.registry import store_areas

    redis = aioredis.from_url(redis_url, decode_responses=True)
    count = await store_areas(redis, synthetic_registry(points))
    await Accounts(redis).create_user("drafter", ["drafter"], "drafter-password")
    await redis.aclose()
    return count


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def geojson_sizes(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        for zoom in ("raw", "10", "12", "14"):
            started = time.perf_counter()
            async with http.get(f"{base}/api/v1/areas.geojson?zoom={zoom}") as resp:
                body = await resp.read()
            took = (time.perf_counter() - started) * 1000
            async with http.get(f"{base}/api/v1/areas.geojson?zoom={zoom}") as resp:
                await resp.read()  # the second ask: from the render cache
            cached = (time.perf_counter() - started) * 1000 - took
            print(
                f"  zoom={zoom:>3}: {len(body) / 1e6:6.2f} MB, gzip {len(gzip.compress(body, 6)) / 1e6:5.2f} MB,"
                f" first {took:6.0f} ms, cached {cached:4.0f} ms"
            )


async def time_to_interactive(base: str, rounds: int) -> None:
    import shutil

    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await page.goto(f"{base}/console/login?lang=en")
        await page.fill("input[name=username]", "drafter")
        await page.fill("input[name=password]", "drafter-password")
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/console")
        await page.goto(f"{base}/console/compose?lang=en")  # warm the server's render cache once
        await page.wait_for_function(
            "() => /^[0-9]+$/.test(document.getElementById('compose-map').dataset.ready || '')"
        )
        ready, dom, data = [], [], []
        for _ in range(rounds):
            await page.goto("about:blank")
            await page.goto(f"{base}/console/compose?lang=en", wait_until="commit")
            await page.wait_for_function(
                "() => /^[0-9]+$/.test(document.getElementById('compose-map')?.dataset.ready || '')", timeout=60_000
            )
            ready.append(int(await page.get_attribute("#compose-map", "data-ready")))
            dom.append(await page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"))
            data.append(
                await page.evaluate(
                    "Math.max(...performance.getEntriesByType('resource')"
                    ".filter(e => e.name.includes('areas.geojson')).map(e => e.responseEnd))"
                )
            )
        await browser.close()
    print(f"compose page, {rounds} loads (median, min-max):")
    print(f"  list usable (DOMContentLoaded): {statistics.median(dom):6.0f} ms ({min(dom):.0f}-{max(dom):.0f})")
    print(f"  areas' GeoJSON received:          {statistics.median(data):6.0f} ms ({min(data):.0f}-{max(data):.0f})")
    print(
        f"  map interactive (all areas drawn): {statistics.median(ready):6.0f} ms ({min(ready)}-{max(ready)})"
        " (target < 1000 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=40, help="points per side of each community")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from foundation.store.connection import redis_server_binary

    directory = Path(tempfile.mkdtemp(prefix="wc-bench-maps-"))
    sock = directory / "redis.sock"
    redis_proc = subprocess.Popen(
        [str(redis_server_binary()), "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    while not sock.exists():
        time.sleep(0.02)
    redis_url = f"unix://{sock}"
    count = asyncio.run(setup(redis_url, args.points))
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app_proc = mp.Process(target=serve_app, args=(redis_url, port))
    app_proc.start()
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_up(f"{base}/healthz"))
        print(f"registry: {count} areas, {args.points * 4} points per community ring")
        print("GeoJSON of every area (GET /api/v1/areas.geojson):")
        asyncio.run(geojson_sizes(base))
        asyncio.run(time_to_interactive(base, args.rounds))
    finally:
        app_proc.terminate()
        app_proc.join()
        redis_proc.terminate()
        redis_proc.wait()


if __name__ == "__main__":
    main()
