"""/readyz and the background loops: a loop failing for longer than its grace makes the process not
ready (503, naming the loop); once its resource is back, it is ready again."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from foundation.retry import RetryPolicy
from foundation.store.connection import redis_server_binary
from publisher.scheduler import scheduler_loop
from warncast.app_keys import SERVICES, SUPERVISOR
from warncast.web.app import create_app


async def test_readyz_names_a_loop_that_keeps_failing_until_it_recovers(aiohttp_client, settings, clock):
    app = create_app(settings, clock=clock)
    supervisor = app[SUPERVISOR]
    supervisor.grace = 0.3  # a few seconds in production; the test need not wait that long
    supervisor.restart = RetryPolicy(base=0.02, cap=0.1)
    client = await aiohttp_client(app)
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["loops"] == {"warnings-follower": "running", "screens-tick": "running"}

    # The real scheduler, pointed at a Redis that is not there (yet).
    directory = Path(tempfile.mkdtemp(prefix="wc-ready-"))
    sock = directory / "redis.sock"
    elsewhere = aioredis.from_url(f"unix://{sock}")
    services = app[SERVICES]
    server: asyncio.subprocess.Process | None = None
    try:
        supervisor.add(scheduler_loop(services.registry, elsewhere, services.warnings, interval=0.01))
        await asyncio.sleep(0.5)
        resp = await client.get("/readyz")
        assert resp.status == 503
        body = await resp.json()
        assert body["status"] == "unavailable" and body["redis"] == "ok", "the app's own Redis is fine"
        assert list(body["failing"]) == ["scheduler"]
        failing = body["failing"]["scheduler"]
        assert failing["restarts"] >= 1 and failing["failing_for"] > 0.3 and failing["last_ok"] is None
        assert "ConnectionError" in failing["last_error"]
        assert body["loops"]["scheduler"] in ("running", "restarting") and body["loops"]["screens-tick"] == "running"

        server = await asyncio.create_subprocess_exec(
            *(str(redis_server_binary()), "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"),
            stdout=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while (resp := await client.get("/readyz")).status != 200:
            assert time.monotonic() < deadline, await resp.text()
            await asyncio.sleep(0.05)
        body = await resp.json()
        assert "failing" not in body and body["loops"]["scheduler"] == "running"
        assert supervisor.health()["scheduler"].last_ok is not None
    finally:
        await elsewhere.aclose()
        if server is not None:
            server.terminate()
            await asyncio.wait_for(server.wait(), 10)
        shutil.rmtree(directory, ignore_errors=True)
