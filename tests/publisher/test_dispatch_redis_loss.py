"""No sends without a record: a fan-out whose Redis is SIGKILLed midway, against a real redis-server
(append-only file on) and the Twilio stand-in, with the real supervised dispatch loops.

The workers stop sending within one rate-limit period of the loss (only sends already in the air and
the tokens a worker holds, never more than one period's worth, still go out), keep the results Redis
did not take, and write them back once Redis is back from its append-only file; then the fan-out
completes. Every recipient gets the warning, duplicates stay within the bound the README states,
and `sms.sent` counts exactly what the provider accepted."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from foundation.access.audit import Actor
from foundation.areas.registry import store_areas
from foundation.retry import RetryPolicy
from foundation.store import keys
from foundation.store.connection import open_redis, redis_server_binary
from foundation.supervisor import Supervisor
from publisher.dispatch.ratelimit import PERIOD, RateLimiter
from publisher.dispatch.runner import dispatch_loops
from tests.conftest import Clock, warning_body
from tests.delivery_helpers import sms_settings
from tests.standins.twilio import TwilioStandIn
from warncast.demo_city import demo_areas
from warncast.services import Services

RECIPIENTS = 300
RATE = 200.0  # SMS segments per second, all workers together
CONCURRENCY = 8  # sends in flight per worker
WORKERS = 2
# Per worker: the sends in the air, plus at most one period's tokens (README, "SMS and Telegram delivery").
BOUND = WORKERS * (CONCURRENCY + math.ceil(RATE * PERIOD))


class RedisServer:
    """A redis-server with its append-only file in `directory`, to kill and start again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                str(redis_server_binary()),
                *("--port", "0", "--unixsocket", str(self.socket), "--dir", str(self.directory)),
                *("--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--loglevel", "warning"),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            assert self.process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.01)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    redis = RedisServer(tmp_path / "redis")
    redis.directory.mkdir()
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
async def services(settings: Any, server: RedisServer, twilio: TwilioStandIn) -> AsyncIterator[Services]:
    configured = sms_settings(settings, twilio.url, redis_url=server.url, dispatch_reclaim_after=1.0)
    configured = configured.with_(sms_rate=RATE, dispatch_concurrency=CONCURRENCY)
    async with open_redis(configured) as redis:
        svc = await Services.build(configured, redis)
        await store_areas(redis, demo_areas())
        await svc.registry.refresh(redis)
        await svc.start_channels()
        try:
            yield svc
        finally:
            await svc.close_channels()


async def until(what: str, condition, within: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


@pytest.mark.timeout(40)
async def test_a_fan_out_that_loses_redis_stops_at_once_and_completes_once_it_is_back(
    services: Services, server: RedisServer, twilio: TwilioStandIn
) -> None:
    started = time.monotonic()
    phones = [f"+86138{i:08d}" for i in range(RECIPIENTS)]
    for phone in phones:
        await services.subscribers.subscribe("sms", phone, "990101", lang="zh_Hans", source="test")
    chief = Actor("chief", frozenset({"chief"}))
    supervisors = [Supervisor(restart=RetryPolicy(base=0.05, cap=0.5, jitter=0.0)) for _ in range(WORKERS)]
    for supervisor in supervisors:
        supervisor.add(*dispatch_loops(services.dispatch))
        supervisor.start()
    try:
        draft = await services.warnings.create(chief, warning_body(Clock()))
        message = await services.warnings.fast_path(chief, draft.id, "test")

        async def received(n: int) -> bool:
            return len(twilio.messages) >= n

        await until("a third sent", lambda: received(RECIPIENTS // 3), within=10)
        server.kill()
        killed_at = time.monotonic()
        await asyncio.sleep(1.0)
        after_kill = [m for m in twilio.messages if m.at > killed_at]
        assert len(after_kill) <= BOUND, f"{len(after_kill)} sends after the kill"
        assert all(m.at - killed_at < PERIOD + 1.0 for m in after_kill), "sends stop at once (slack for a busy loop)"
        assert len(twilio.messages) < RECIPIENTS, "the loss came mid-fan-out"

        async def dispatch_failed() -> bool:  # every worker's run has ended with the loss
            return all(s.health()["dispatch"].restarts >= 1 for s in supervisors)

        await until("the dispatch loops fail", dispatch_failed, within=10)
        assert len([m for m in twilio.messages if m.at > killed_at]) == len(after_kill), "nothing more went out"
        sent_while_away = len(twilio.messages)

        server.start()  # from its append-only file
        redis: aioredis.Redis = services.redis

        async def completed() -> bool:
            if set(twilio.counts) != set(phones):
                return False
            stats = await redis.hgetall(keys.delivery_stats(message.id))
            pending = (await redis.xpending(keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP))["pending"]
            return int(stats.get("sms.sent", 0)) == len(twilio.messages) and not pending

        await until("the fan-out completes", completed, within=25)
        await asyncio.sleep(0.3)  # nothing more goes out
        counts = Counter(m.to for m in twilio.messages)
        duplicates = sum(n - 1 for n in counts.values())
        assert set(counts) == set(phones) and duplicates <= BOUND, f"{duplicates} duplicates (bound {BOUND})"
        stats = await redis.hgetall(keys.delivery_stats(message.id))
        accepted = len(twilio.messages)
        assert int(stats["sms.sent"]) == accepted, "the stats count what the provider accepted"
        assert int(stats["sms.planned"]) == RECIPIENTS
        assert int(await redis.hget(keys.DELIVERY_TOTALS, "sms.sent") or 0) == accepted
        assert await redis.xlen(keys.DISPATCH_QUEUE) == 0 and await redis.zcard(keys.DISPATCH_RETRY) == 0
        print(
            f"\nsent before the kill {sent_while_away - len(after_kill)}, after it {len(after_kill)}, "
            f"in all {accepted} for {RECIPIENTS} recipients: {duplicates} duplicates (bound {BOUND})"
        )
    finally:
        for supervisor in supervisors:
            await supervisor.stop()
    assert time.monotonic() - started < 40


async def test_tokens_held_locally_are_spent_for_one_period_after_redis_last_answered(server: RedisServer) -> None:
    """Even a worker whose rate lets it hold many tokens stops spending them once Redis has not
    answered for a period (here Redis is stopped: no error, no answer)."""
    redis = aioredis.from_url(server.url, decode_responses=True, socket_timeout=5)
    limiter = RateLimiter(redis, "sms", rate=1_000_000)  # fetches 50,000 tokens at a time
    assert server.process is not None
    try:
        await limiter.take(1)
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            async with asyncio.timeout(PERIOD / 2):
                await limiter.take(100)  # from what it holds: no round trip
            await asyncio.sleep(PERIOD * 1.5)
            with pytest.raises(TimeoutError):  # it waits for Redis now, however much it holds
                async with asyncio.timeout(0.5):
                    await limiter.take(1)
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        async with asyncio.timeout(5):
            await limiter.take(1)  # Redis answers again: so does the limiter
    finally:
        await redis.aclose()
