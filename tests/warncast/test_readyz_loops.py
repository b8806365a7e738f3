"""/readyz and the background loops: a loop failing for longer than its grace makes the process not
ready (503, naming the loop), and so does a loop that runs but has stopped reporting in (stuck in a
call that never returns); once its resource is back, it is ready again. Redis must take a write:
a replica answers PING but is not ready."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import tempfile
import time
import warnings
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from channels import events
from channels.events import EventFollower
from foundation.retry import RetryPolicy
from foundation.store import keys
from foundation.store.connection import redis_server_binary
from foundation.supervisor import Loop
from publisher.scheduler import scheduler_loop
from warncast.app_keys import REDIS, SERVICES, SUPERVISOR
from warncast.outlets import Outlets
from warncast.web.app import create_app


async def _until_status(client, status: int, within: float = 10.0) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while (resp := await client.get("/readyz")).status != status:
        assert time.monotonic() < deadline, await resp.text()
        await asyncio.sleep(0.05)
    return await resp.json()


@pytest.fixture
async def other_redis() -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """A redis-server of the test's own, to stop and continue (the app's Redis stays fine)."""
    directory = Path(tempfile.mkdtemp(prefix="wc-ready-"))
    sock = directory / "redis.sock"
    server = await asyncio.create_subprocess_exec(
        *(str(redis_server_binary()), "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"),
        stdout=asyncio.subprocess.DEVNULL,
    )
    while not sock.exists():  # noqa: ASYNC110 - a file another process makes
        await asyncio.sleep(0.02)
    try:
        yield server, f"unix://{sock}"
    finally:
        os.kill(server.pid, signal.SIGCONT)
        server.terminate()
        await asyncio.wait_for(server.wait(), 10)
        shutil.rmtree(directory, ignore_errors=True)


async def test_readyz_names_a_loop_that_keeps_failing_until_it_recovers(aiohttp_client, settings, clock):
    app = create_app(settings, clock=clock)
    supervisor = app[SUPERVISOR]
    supervisor.grace = 0.3  # a few seconds in production; the test need not wait that long
    supervisor.restart = RetryPolicy(base=0.02, cap=0.1)
    client = await aiohttp_client(app)
    ready = await client.get("/readyz")
    assert ready.status == 200
    loops = (await ready.json())["loops"]
    assert set(loops) == {"warnings-follower", "screens-tick"}
    assert all(loop["state"] == "running" and 0 <= loop["since_report"] < loop["within"] for loop in loops.values())
    assert loops["warnings-follower"]["within"] == 20 and loops["screens-tick"]["within"] == 20

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
        assert body["loops"]["scheduler"]["state"] in ("running", "restarting")
        assert body["loops"]["screens-tick"]["state"] == "running"

        server = await asyncio.create_subprocess_exec(
            *(str(redis_server_binary()), "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"),
            stdout=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while (resp := await client.get("/readyz")).status != 200:
            assert time.monotonic() < deadline, await resp.text()
            await asyncio.sleep(0.05)
        body = await resp.json()
        assert "failing" not in body and body["loops"]["scheduler"]["state"] == "running"
        assert supervisor.health()["scheduler"].last_ok is not None
    finally:
        await supervisor.stop()  # the loops first: a client closed under its loop makes new connections
        await elsewhere.aclose()
        if server is not None:
            server.terminate()
            await asyncio.wait_for(server.wait(), 10)
        shutil.rmtree(directory, ignore_errors=True)


async def test_a_loop_stuck_in_a_call_that_never_returns_is_not_ready(
    aiohttp_client, settings, clock, other_redis, monkeypatch
):
    """The real follower reading from a Redis that stops answering (SIGSTOP: no error, no reply, and
    a client without a socket timeout) runs on, but stops reporting in: not ready, until it reads again."""
    server, url = other_redis
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    elsewhere = aioredis.from_url(url, decode_responses=True)
    monkeypatch.setattr(events, "BLOCK_MS", 100)  # a short wait per read (this client has no timeout)
    follower = EventFollower(elsewhere)
    try:
        app[SUPERVISOR].add(Loop("follower-elsewhere", follower.run, within=0.5))
        body = await _until_status(client, 200)
        assert body["loops"]["follower-elsewhere"]["since_report"] < 0.5
        os.kill(server.pid, signal.SIGSTOP)
        body = await _until_status(client, 503)
        stuck = body["failing"]["follower-elsewhere"]
        assert stuck["state"] == "running" and stuck["restarts"] == 0 and stuck["last_error"] is None
        assert stuck["why"].startswith("no report for") and stuck["since_report"] >= 0.5
        assert body["redis"] == "ok" and list(body["failing"]) == ["follower-elsewhere"]
        os.kill(server.pid, signal.SIGCONT)
        body = await _until_status(client, 200)
        assert body["loops"]["follower-elsewhere"]["state"] == "running"
    finally:
        os.kill(server.pid, signal.SIGCONT)
        await elsewhere.aclose()


async def test_the_follower_and_the_screens_tick_let_their_failures_reach_the_supervisor(
    aiohttp_client, settings, clock
):
    app = create_app(settings, clock=clock)
    supervisor = app[SUPERVISOR]
    supervisor.grace = 0.2
    supervisor.restart = RetryPolicy(base=0.02, cap=0.1)
    client = await aiohttp_client(app)
    nowhere = aioredis.from_url("unix:///nonexistent/redis.sock")
    try:
        context = dataclasses.replace(app[SERVICES].channel_context, redis=nowhere)
        outlets = Outlets.build(context)
        supervisor.add(
            Loop("follower-nowhere", outlets.follower.run), Loop("tick-nowhere", partial(outlets.hub.tick, 0.01))
        )
        await asyncio.sleep(0.5)
        body = await _until_status(client, 503)
        assert set(body["failing"]) == {"follower-nowhere", "tick-nowhere"}
        for name in ("follower-nowhere", "tick-nowhere"):
            health = supervisor.health()[name]
            assert health.restarts >= 1 and "ConnectionError" in (health.last_error or ""), health
            assert body["failing"][name]["why"] == "failing"
        assert not outlets.follower.live
    finally:
        await nowhere.aclose()


async def test_a_redis_that_refuses_writes_is_not_ready(aiohttp_client, settings, clock, tmp_path):
    """A replica (here of a primary that is not there) answers PING and reads, but not a write."""
    sock = tmp_path / "replica.sock"
    replica = await asyncio.create_subprocess_exec(
        *(str(redis_server_binary()), "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"),
        *("--replicaof", "127.0.0.1", "1"),
        stdout=asyncio.subprocess.DEVNULL,
    )
    client = await aiohttp_client(create_app(settings, clock=clock))
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["redis"] == "ok"
    assert await client.app[REDIS].pttl(keys.READY_PROBE) > 0, "the probe is a short-lived key"
    while not sock.exists():  # noqa: ASYNC110 - a file another process makes
        await asyncio.sleep(0.02)
    original = client.app[REDIS]
    on_replica = aioredis.from_url(f"unix://{sock}", decode_responses=True)
    with warnings.catch_warnings():  # swapping a started app's Redis is a test's business only
        warnings.simplefilter("ignore", DeprecationWarning)
        client.app[REDIS] = on_replica
    try:
        assert await on_replica.ping()
        resp = await client.get("/readyz")
        assert resp.status == 503
        body = await resp.json()
        assert body["status"] == "unavailable" and "ReadOnlyError" in body["redis"], body
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client.app[REDIS] = original
        await on_replica.aclose()
        replica.terminate()
        await asyncio.wait_for(replica.wait(), 10)
