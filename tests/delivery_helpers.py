"""Shared helpers for the delivery tests: an app wired to the provider stand-ins, signed Twilio
webhooks, subscribers, and running the planner and workers in burst mode."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from twilio.request_validator import RequestValidator

from foundation.areas.registry import store_areas
from foundation.store import keys
from foundation.store.connection import open_redis
from foundation.store.streams import ensure_group
from publisher.dispatch.planner import Planner
from publisher.dispatch.worker import Worker
from warncast.demo_city import demo_areas
from warncast.services import Services

TOKEN = "secret"
FROM = "+15557654321"


def sms_settings(settings: Any, twilio_url: str, **overrides: Any) -> Any:
    return settings.with_(
        twilio_account_sid="ACtest",
        twilio_auth_token=TOKEN,
        twilio_from=FROM,
        twilio_api_base=twilio_url,
        dispatch_backoff=0.01,
        provider_timeout=0.5,
        sms_rate=10_000.0,
        telegram_rate=10_000.0,
        **overrides,
    )


@asynccontextmanager
async def demo_services(settings: Any) -> AsyncIterator[Services]:
    """Services over `settings`' own Redis, with the demo city's areas and started channels."""
    async with open_redis(settings) as redis:
        svc = await Services.build(settings, redis)
        await store_areas(redis, demo_areas())
        await svc.registry.refresh(redis)
        await svc.start_channels()
        try:
            yield svc
        finally:
            await svc.close_channels()


async def signed_post(client: Any, path: str, params: dict[str, str], *, token: str = TOKEN) -> Any:
    url = "http://warncast.test" + path
    signature = RequestValidator(token).compute_signature(url, params)
    return await client.post(path, data=params, headers={"X-Twilio-Signature": signature})


async def sms(client: Any, phone: str, body: str) -> str:
    resp = await signed_post(
        client,
        "/webhooks/twilio/sms",
        {"From": phone, "To": FROM, "Body": body, "MessageSid": "SMin", "AccountSid": "ACtest"},
    )
    assert resp.status == 200, await resp.text()
    return await resp.text()


async def drain(
    services: Services, workers: list[Worker] | None = None, rounds: int = 50, planner: Planner | None = None
) -> None:
    """Plan every pending event and deliver every segment, including due retries."""
    import asyncio

    await ensure_group(services.redis, keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP)
    planner = planner or Planner(services.dispatch, "test-planner")
    await ensure_group(services.redis, keys.WARNINGS_EVENTS, keys.PLANNER_GROUP)
    workers = workers or [Worker(services.dispatch, "test-worker")]
    for _ in range(rounds):
        planned = await planner.run_once()
        sent = sum(await asyncio.gather(*(w.run_once() for w in workers)))
        # Retries due soon are waited for; one due much later (waiting for room in the hour) is not.
        waiting = await services.redis.zcount(keys.DISPATCH_RETRY, "-inf", time.time() + 5)
        if not planned and not sent and not waiting:
            return
        if not planned and not sent:
            await asyncio.sleep(0.02)
    raise AssertionError("dispatch did not settle")
