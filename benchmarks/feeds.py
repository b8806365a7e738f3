"""Feeds and screens throughput, and live-screen fan-out, against baselines from the same run.

1. Requests per second of /feeds/warnings.atom, /feeds/warnings.rss, /feeds/cap.atom,
   /api/v1/warnings?active=true and /screens/{id}.txt, each against a bare aiohttp handler that
   returns the same bytes (target: >= 50 %), with the same load generator in a separate process.
2. N live screens (default 2,000) on /screens/{id}/events over 127.0.0.1, spread over 50 screens:
   time from publication (the stream entry's time) until the last connection has the event, and the
   server's memory per connection.

    .venv/bin/python benchmarks/feeds.py [--seconds 5] [--screens 2000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
SCREEN_IDS = 50


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve_app(redis_url: str, port: int) -> None:
    raise_fd_limit()
    from foundation.settings import Settings
    from warncast.web.app import create_app

    # One client address sends everything: limits high enough never to refuse, but still checked.
    settings = Settings(
        redis_url=redis_url,
        secret_key="bench",
        log_json=False,
        public_url=f"http://127.0.0.1:{port}",
        public_rate=1_000_000.0,
        public_burst=1_000_000,
        sse_per_ip=1_000_000,
    )
    web.run_app(create_app(settings), host="127.0.0.1", port=port, print=None, access_log=None)


def serve_bare(bodies: dict[str, bytes], port: int) -> None:
    """The baseline: a bare aiohttp handler answering each path with the same bytes."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=bodies[request.path_qs], content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def load(url: str, seconds: float, concurrency: int, out: mp.Queue) -> None:
    async def run() -> int:
        done = 0
        deadline = time.perf_counter() + seconds
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

            async def worker() -> None:
                nonlocal done
                while time.perf_counter() < deadline:
                    async with http.get(url) as resp:
                        await resp.read()
                        assert resp.status == 200, resp.status
                    done += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done

    out.put(asyncio.run(run()) / seconds)


def rps(url: str, seconds: float, concurrency: int) -> float:
    out: mp.Queue = mp.Queue()
    proc = mp.Process(target=load, args=(url, seconds, concurrency, out))
    proc.start()
    result = out.get()
    proc.join()
    return result


def live_clients(base: str, count: int, first: int, ready: mp.Queue, results: mp.Queue) -> None:
    """`count` SSE connections; report when all have their first state, then when each gets the next."""
    raise_fd_limit()

    async def run() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            urls = [f"{base}/screens/s{(first + i) % SCREEN_IDS}/events" for i in range(count)]
            responses = await asyncio.gather(*(http.get(url) for url in urls))

            async def next_state(resp: aiohttp.ClientResponse) -> None:
                """Read up to the end of the next event that carries data (skips `retry:` and pings)."""
                has_data = False
                while True:
                    raw = await resp.content.readline()
                    if not raw:
                        raise RuntimeError(f"{resp.url} ended the stream")
                    line = raw.strip()
                    if line.startswith(b"data:"):
                        has_data = True
                    elif not line and has_data:
                        return

            await asyncio.gather(*(next_state(r) for r in responses))  # the initial state
            ready.put(count)
            times = []

            async def second(resp: aiohttp.ClientResponse) -> None:
                await next_state(resp)
                times.append(time.time())

            await asyncio.gather(*(second(r) for r in responses))
            results.put(max(times))
            for resp in responses:
                resp.close()

    asyncio.run(run())


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def api(http: aiohttp.ClientSession, base: str, token: str, method: str, path: str, body: dict) -> dict:
    async with http.request(method, f"{base}{path}", json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status < 300, await resp.text()
        return await resp.json()


async def setup(redis_url: str, base: str) -> dict[str, str]:
    """Demo areas, tokens, 50 screens and three warnings in force (through the real API)."""
    import redis.asyncio as aioredis

    from foundation.access.auth import Accounts
    from foundation.areas.registry import store_areas
    from warncast.demo_city import demo_areas

    redis = aioredis.from_url(redis_url, decode_responses=True)
    await store_areas(redis, demo_areas())
    accounts = Accounts(redis)
    tokens = {role: await accounts.create_token(role, [role]) for role in ("drafter", "approver", "admin")}
    await redis.aclose()
    async with aiohttp.ClientSession() as http:
        for i in range(SCREEN_IDS):
            area = ["990101", "990101001001", "990102", "990100"][i % 4]
            await api(
                http, base, tokens["admin"], "POST", "/api/v1/screens", {"id": f"s{i}", "name": f"S{i}", "area": area}
            )
        for area, grade in (("990101", "blue"), ("990102", "yellow"), ("990103001", "blue")):
            await publish(http, base, tokens, area, grade)
    return tokens


async def publish(http: aiohttp.ClientSession, base: str, tokens: dict[str, str], area: str, grade: str) -> str:
    from datetime import datetime, timedelta

    expires = (datetime.now().astimezone() + timedelta(hours=6)).isoformat()
    texts = {"headline": f"{grade} warning for {area}", "description": "Heavy rain. " * 20, "instruction": "Stay in."}
    body = {
        "grade": grade,
        "event": "rainstorm",
        "areas": [area],
        "expires": expires,
        "info": {"zh-CN": texts, "en": texts},
    }
    draft = await api(http, base, tokens["drafter"], "POST", "/api/v1/warnings", body)
    await api(http, base, tokens["drafter"], "POST", f"/api/v1/warnings/{draft['id']}/submit", {})
    await api(http, base, tokens["approver"], "POST", f"/api/v1/warnings/{draft['id']}/approve", {})
    return draft["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--screens", type=int, default=2000)
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per path; the best counts")
    args = parser.parse_args()
    raise_fd_limit()
    from foundation.store.connection import redis_server_binary

    directory = Path(tempfile.mkdtemp(prefix="wc-bench-"))
    sock = directory / "redis.sock"
    redis_proc = subprocess.Popen(
        [str(redis_server_binary()), "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    while not sock.exists():
        time.sleep(0.02)
    redis_url = f"unix://{sock}"
    app_port, bare_port = free_port(), free_port()
    app_proc = mp.Process(target=serve_app, args=(redis_url, app_port))
    app_proc.start()
    base = f"http://127.0.0.1:{app_port}"
    try:
        asyncio.run(wait_up(f"{base}/healthz"))
        tokens = asyncio.run(setup(redis_url, base))
        paths = [
            "/feeds/warnings.atom?lang=en",
            "/feeds/warnings.rss?lang=zh-CN",
            "/feeds/cap.atom?lang=en",
            "/api/v1/warnings?active=true",
            "/screens/s0.txt",
        ]

        async def fetch_all() -> dict[str, bytes]:
            async with aiohttp.ClientSession() as http:
                return {p: await (await http.get(f"{base}{p}")).read() for p in paths}

        bodies = asyncio.run(fetch_all())
        bare_proc = mp.Process(target=serve_bare, args=(bodies, bare_port))
        bare_proc.start()
        asyncio.run(wait_up(f"http://127.0.0.1:{bare_port}{paths[0]}"))
        print(
            f"throughput: best of {args.rounds} alternating {args.seconds:.0f} s rounds, {args.concurrency} in flight:"
        )
        for path in paths:
            # Alternate the two and keep each one's best round: this machine's load varies.
            bare = ours = 0.0
            for _ in range(args.rounds):
                bare = max(bare, rps(f"http://127.0.0.1:{bare_port}{path}", args.seconds, args.concurrency))
                ours = max(ours, rps(f"{base}{path}", args.seconds, args.concurrency))
            print(f"  {path:34} {len(bodies[path]):>7} B  {ours:8.0f} req/s vs bare {bare:8.0f}  = {ours / bare:6.1%}")
        bare_proc.terminate()
        bare_proc.join()
        live(base, tokens, app_proc.pid, redis_url, args)
    finally:
        app_proc.terminate()
        app_proc.join()
        redis_proc.terminate()
        redis_proc.wait()


def live(base: str, tokens: dict[str, str], server_pid: int, redis_url: str, args: argparse.Namespace) -> None:
    before = rss_kib(server_pid)
    ready: mp.Queue = mp.Queue()
    results: mp.Queue = mp.Queue()
    share = args.screens // args.client_processes
    procs = [
        mp.Process(target=live_clients, args=(base, share, i * share, ready, results))
        for i in range(args.client_processes)
    ]
    for proc in procs:
        proc.start()
    connected = sum(ready.get(timeout=300) for _ in procs)
    time.sleep(0.5)
    after = rss_kib(server_pid)
    published_at = asyncio.run(publish_city_wide(base, tokens, redis_url))
    last = max(results.get(timeout=60) for _ in procs)
    for proc in procs:
        proc.join()
    print(
        f"live screens: {connected} SSE connections over {SCREEN_IDS} screens, {args.client_processes} client processes"
    )
    print(f"  publication -> last screen has it: {(last - published_at) * 1000:.0f} ms (target < 1000 ms)")
    per_conn = (after - before) / connected
    print(f"  server memory: {before / 1024:.0f} MiB -> {after / 1024:.0f} MiB = {per_conn:.1f} KiB per connection")


async def publish_city_wide(base: str, tokens: dict[str, str], redis_url: str) -> float:
    """Publish a city-wide warning; return the publication time, from the lifecycle stream entry's id
    (Redis's clock on this machine, in milliseconds)."""
    import redis.asyncio as aioredis

    from foundation.store import keys

    async with aiohttp.ClientSession() as http:
        await publish(http, base, tokens, "990100", "yellow")
    redis = aioredis.from_url(redis_url, decode_responses=True)
    newest = await redis.xrevrange(keys.WARNINGS_EVENTS, count=1)
    await redis.aclose()
    return int(newest[0][0].split("-")[0]) / 1000


if __name__ == "__main__":
    main()
