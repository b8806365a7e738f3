"""Counts survive a lost reply: Redis takes a segment run's write of what it sent, then its answer
is lost (the connection drops). The worker cannot tell whether the write happened, so it writes it
again; `sms.sent` must still count each accepted send once. Against a real redis-server behind a
proxy that drops exactly that reply, the Twilio stand-in, and the real planner and worker."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from foundation.access.audit import Actor
from foundation.settings import Settings
from foundation.store import keys
from foundation.store.connection import redis_server_binary
from foundation.store.streams import ensure_group
from publisher.dispatch.planner import Planner
from publisher.dispatch.worker import CLAIM, COUNT, Worker
from tests.conftest import Clock, warning_body
from tests.delivery_helpers import demo_services, drain, sms_settings
from tests.lossy_proxy import LossyProxy
from tests.redis_cluster import free_port
from tests.standins.twilio import TwilioStandIn
from warncast.services import Services

RECIPIENTS = 40


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    server = subprocess.Popen(
        [str(redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        for _ in range(500):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        yield port
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
async def proxy(redis_port: int) -> AsyncIterator[LossyProxy]:
    async with LossyProxy(redis_port) as running:
        yield running


@pytest.fixture
async def services(tmp_path: Path, proxy: LossyProxy, twilio: TwilioStandIn) -> AsyncIterator[Services]:
    base = Settings(
        redis_url=proxy.url,
        data_dir=tmp_path,
        secret_key="test-secret",
        log_json=False,
        run_scheduler=False,
        run_workers=False,
        password_memory_kib=8192,
        public_url="http://warncast.test",
    )
    async with demo_services(sms_settings(base, twilio.url, dispatch_reclaim_after=0.2)) as svc:
        yield svc


async def test_a_write_of_sends_whose_reply_is_lost_counts_them_once(
    services: Services, proxy: LossyProxy, twilio: TwilioStandIn
) -> None:
    phones = [f"+86139{i:08d}" for i in range(RECIPIENTS)]
    for phone in phones:
        await services.subscribers.subscribe("sms", phone, "990101", lang="zh_Hans", source="test")
    await services.redis.script_load(COUNT.source)  # so the write is carried out (no NOSCRIPT first)
    proxy.lose_reply_to(b"sms.sent")  # the first write that counts sends
    chief = Actor("chief", frozenset({"chief"}))
    draft = await services.warnings.create(chief, warning_body(Clock()))
    message = await services.warnings.fast_path(chief, draft.id, "test")

    for _ in range(20):  # a burst-mode worker's round ends with the loss; the next ones finish the work
        try:
            await drain(services)
            break
        except RedisConnectionError:
            continue
    assert proxy.lost == 1, "the reply of the write was lost"
    assert set(twilio.counts) == set(phones)
    stats = await services.redis.hgetall(keys.delivery_stats(message.id))
    accepted = len(twilio.messages)
    assert int(stats["sms.sent"]) == accepted, f"sms.sent {stats['sms.sent']}, the provider accepted {accepted}"
    assert int(await services.redis.hget(keys.DELIVERY_TOTALS, "sms.sent") or 0) == accepted


async def test_claims_whose_reply_is_lost_are_given_back_for_another_worker(
    services: Services, proxy: LossyProxy, twilio: TwilioStandIn
) -> None:
    """A worker that cannot tell which recipients it claimed gives back every claim under its run's
    mark, so another worker sends to them at once instead of waiting for this one (alive) to die."""
    phones = [f"+86137{i:08d}" for i in range(RECIPIENTS)]
    for phone in phones:
        await services.subscribers.subscribe("sms", phone, "990101", lang="zh_Hans", source="test")
    chief = Actor("chief", frozenset({"chief"}))
    draft = await services.warnings.create(chief, warning_body(Clock()))
    await services.warnings.fast_path(chief, draft.id, "test")
    planner = Planner(services.dispatch, "test-planner")
    await ensure_group(services.redis, keys.WARNINGS_EVENTS, keys.PLANNER_GROUP)
    await ensure_group(services.redis, keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP)
    assert await planner.run_once()

    first, second = Worker(services.dispatch, "first"), Worker(services.dispatch, "second")
    await services.redis.script_load(CLAIM.source)  # so the claims run (no NOSCRIPT first)
    proxy.lose_reply_to(CLAIM.sha.encode())
    with pytest.raises(RedisConnectionError):
        await first.run_once()
    assert proxy.lost == 1 and not twilio.messages
    assert await services.redis.exists(keys.worker_heartbeat("first")), "the first worker is alive"
    await asyncio.sleep(0.3)  # the segment can be reclaimed (dispatch_reclaim_after)
    await drain(services, [second], planner=planner)  # takes it up: every claim is free
    assert sorted(twilio.counts) == sorted(phones)
