"""Alert fatigue under a burst of updates, through the real app, Redis, planner and worker and the
Twilio stand-in: at most N messages of one warning an hour per recipient (the rest wait for room,
and are dropped once a newer version has overtaken them), never the same text twice, a cancellation
always; Telegram updates reply to the first message of the thread."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from channels.outbox import read_outbox
from foundation.store import keys
from publisher.dispatch.fatigue import Received, Version, decide
from tests.delivery_helpers import drain, sms_settings
from tests.publisher.test_dispatch import D1, subscribe
from tests.publisher.test_retention import approve
from tests.publisher.test_workflow import act, published
from tests.standins.twilio import TwilioStandIn

PER_HOUR = 2


@pytest.fixture
def settings(settings: Any, twilio: TwilioStandIn) -> Any:
    return sms_settings(settings, twilio.url, thread_messages_per_hour=PER_HOUR)


def info(headline: str) -> dict[str, Any]:
    """Texts of an update whose headline says `headline` (in both languages)."""
    return {
        "info": {
            "zh-CN": {
                "headline": f"暴雨预警：{headline}",
                "description": "雨势持续。",
                "instruction": "远离低洼地带。",
            },
            "en": {
                "headline": f"Rainstorm: {headline}",
                "description": "Rain goes on.",
                "instruction": "Keep off low ground.",
            },
        }
    }


async def update(client: Any, staff: Any, of: str, grade: str = "yellow", **changes: Any) -> dict:
    draft = await act(client, staff, "drafter", of, "update", status=201, **changes)
    return await approve(client, staff, draft["id"], grade)


async def stats(services: Any, message_id: str) -> dict[str, int]:
    return {
        k: int(v) for k, v in (await services.redis.hgetall(keys.delivery_stats(message_id))).items() if v.isdigit()
    }


async def test_a_burst_of_updates_is_capped_per_hour_and_a_cancel_always_goes_out(
    client, services, staff, clock, twilio
):
    phones = await subscribe(services, 3, D1, min_grade="yellow")
    original = await published(client, staff, clock, grade="yellow")
    await drain(services)
    first = await update(client, staff, original["id"], **info("first update"))
    await drain(services)
    assert all(twilio.counts[p] == 2 for p in phones), "the first update: two messages within the hour"

    twilio.counts.clear()
    second = await update(client, staff, first["id"], **info("second update"))
    await drain(services)
    assert not twilio.counts, "a third message of the warning within the hour waits"
    waiting = [json.loads(job) for job in await services.redis.zrange(keys.DISPATCH_RETRY, 0, -1)]
    assert sorted(a for job in waiting for a in job["to"].split("\n")) == sorted(phones)
    due = min(score for _, score in await services.redis.zrange(keys.DISPATCH_RETRY, 0, -1, withscores=True))
    assert due > time.time() + 3000, "until the first message leaves the hour"
    assert (await stats(services, second["id"]))["sms.retrying"] == 3

    cancel = await act(client, staff, "drafter", second["id"], "cancel", status=201, reason="Rain stopped")
    await approve(client, staff, cancel["id"], "yellow")
    await drain(services)
    assert all(twilio.counts[p] == 1 for p in phones), "a cancellation goes out, cap or not"

    # The waiting update's time comes: the cancellation has overtaken it, so it is dropped.
    for job in await services.redis.zrange(keys.DISPATCH_RETRY, 0, -1):
        await services.redis.zadd(keys.DISPATCH_RETRY, {job: 0})
    twilio.counts.clear()
    await drain(services)
    assert not twilio.counts, "an overtaken update is not sent after its cancellation"
    counts = await stats(services, second["id"])
    assert counts["sms.skipped"] == 3 and counts["sms.retrying"] == 0 and counts.get("sms.sent", 0) == 0
    delivery = await (await client.get(f"/api/v1/warnings/{second['id']}/deliveries", headers=staff["drafter"])).json()
    assert delivery["channels"]["sms"]["pending"] == 0, "skipped recipients are not pending"


async def test_the_same_text_is_never_sent_twice(client, services, staff, clock, twilio):
    phones = await subscribe(services, 2, D1, min_grade="yellow")
    original = await published(client, staff, clock, grade="yellow")
    await drain(services)
    first = await update(client, staff, original["id"], **info("first update"))
    await drain(services)
    twilio.counts.clear()
    again = await update(client, staff, first["id"])  # changes nothing the texts say
    await drain(services)
    assert not twilio.counts, "an update that reads like the last one is not sent again"
    assert (await stats(services, again["id"]))["sms.skipped"] == len(phones)


async def test_telegram_updates_reply_to_the_first_message_of_the_thread(client, services, staff, clock):
    chats = await subscribe(services, 2, D1, channel="telegram", min_grade="yellow")  # outbox mode: no bot token
    original = await published(client, staff, clock, grade="yellow")
    await drain(services)
    firsts = {e["to"]: e["id"] for e in await read_outbox(services.redis, "telegram")}
    assert set(firsts) == set(chats) and not any("reply_to" in e for e in await read_outbox(services.redis, "telegram"))
    await update(client, staff, original["id"], **info("first update"))
    await drain(services)
    replies = [e for e in await read_outbox(services.redis, "telegram") if "reply_to" in e]
    assert {e["to"]: e["reply_to"] for e in replies} == {chat: f"outbox-{firsts[chat]}" for chat in chats}


def test_the_hour_counts_from_the_oldest_message_that_keeps_it_full():
    hour = 3_600_000
    got = [Received(Version(f"v{i}", t), f"p{i}") for i, t in enumerate((0, 10 * 60_000, 50 * 60_000))]
    now = 55 * 60_000
    verdict = decide("update", "new", got, ["a", "b", "c"], now_ms=now, per_hour=2)
    assert (verdict.send, verdict.reason) == (False, "per_hour")
    assert verdict.wait_seconds == pytest.approx((10 * 60_000 + hour - now) / 1000)  # then two in the hour: room
    assert decide("update", "new", got, ["a"], now_ms=now, per_hour=4).send
    assert decide("update", "b", got, ["a", "b"], now_ms=now, per_hour=9).reason == "same_text"
    assert decide("cancel", "b", got, ["a", "b"], now_ms=now, per_hour=1).send, "cancellations always go out"
    assert decide("update", "new", got, [], now_ms=now, per_hour=4).reply_to == "p0"
