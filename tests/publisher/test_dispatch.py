"""Fan-out through the real dispatch machinery (planner, workers, Redis streams) and the real twilio
client against the stand-in: exactly once, policy and grades, drills, failures, retries, dead letters,
rate limits across workers, lifecycle recipients, receipts, preview, outbox and metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest

from channels.sms.channel import SmsChannel
from foundation.store import keys
from foundation.store.streams import ensure_group
from publisher.dispatch import worker as worker_module
from publisher.dispatch.jobs import Segment, shard_of
from publisher.dispatch.planner import Planner
from publisher.dispatch.worker import Worker
from tests.delivery_helpers import demo_services, drain, signed_post, sms_settings
from tests.publisher.test_workflow import act, published
from tests.standins.twilio import TwilioStandIn

D1, D2 = "990101", "990102"  # two districts of the demo city


@pytest.fixture
def settings(settings: Any, twilio: TwilioStandIn) -> Any:
    return sms_settings(settings, twilio.url, dispatch_max_attempts=3)


async def subscribe(
    services: Any,
    n: int,
    area: str,
    *,
    start: int = 0,
    lang: str = "zh_Hans",
    min_grade: str | None = None,
    drill: bool = False,
    channel: str = "sms",
) -> list[str]:
    phones = []
    for i in range(start, start + n):
        address = f"+86138{i:08d}" if channel == "sms" else str(100000 + i)
        await services.subscribers.subscribe(channel, address, area, lang=lang, source="test")
        changes: dict[str, Any] = {}
        if min_grade:
            changes["min_grade"] = min_grade
        if drill:
            changes["drill"] = True
        if changes:
            await services.subscribers.update(channel, address, **changes)
        phones.append(address)
    return phones


def community_in(services: Any, district: str) -> str:
    return next(c for c in services.registry.descendants(district) if services.registry.get(c).level == "community")


async def test_red_warning_reaches_every_subscriber_once_in_their_language(client, services, staff, clock, twilio):
    zh = await subscribe(services, 30, D1)
    en = await subscribe(services, 20, community_in(services, D1), start=100, lang="en")
    city = await subscribe(services, 5, "990100", start=200)  # city-wide subscribers hear of it
    other = await subscribe(services, 10, D2, start=300)  # another district does not
    stopped = await subscribe(services, 1, D1, start=400)
    await services.subscribers.stop("sms", stopped[0])
    message = await published(client, staff, clock, grade="red")
    await drain(services)
    assert set(twilio.counts) == set(zh + en + city)
    assert all(count == 1 for count in twilio.counts.values())
    assert not set(twilio.counts) & set(other + stopped)
    bodies = {m.to: m.body for m in twilio.messages}
    assert "红色" in bodies[zh[0]] and "Red" in bodies[en[0]]
    stats = await (await client.get(f"/api/v1/warnings/{message['id']}/deliveries", headers=staff["chief"])).json()
    sms = stats["channels"]["sms"]
    assert (sms["planned"], sms["sent"], sms["failed"], sms["pending"]) == (55, 55, 0, 0)
    assert sms["seconds_to_first"] is not None and sms["seconds_to_last"] >= sms["seconds_to_first"]


async def test_policy_and_minimum_grade(client, services, staff, clock, twilio):
    default = await subscribe(services, 3, D1)  # SMS default: orange and above
    yellow = await subscribe(services, 3, D1, start=10, min_grade="yellow")
    blue = await subscribe(services, 3, D1, start=20, min_grade="blue")
    red_only = await subscribe(services, 3, D1, start=30, min_grade="red")
    await published(client, staff, clock, grade="blue")
    await drain(services)
    assert twilio.counts == {}, "blue goes to no SMS by default"
    await published(client, staff, clock, grade="yellow")
    await drain(services)
    assert set(twilio.counts) == set(yellow + blue)
    twilio.counts.clear()
    await published(client, staff, clock, grade="orange")
    await drain(services)
    assert set(twilio.counts) == set(default + yellow + blue + red_only), "orange reaches everyone"
    # The policy is data: switch yellow SMS off.
    resp = await client.put("/api/v1/channel-policy", headers=staff["admin"], json={"yellow": {"sms": "off"}})
    assert resp.status == 200
    twilio.counts.clear()
    await published(client, staff, clock, grade="yellow")
    await drain(services)
    assert twilio.counts == {}


async def test_drills_reach_only_drill_participants(client, services, staff, clock, twilio):
    plain = await subscribe(services, 4, D1)
    drill = await subscribe(services, 2, D1, start=50, drill=True)
    await published(client, staff, clock, grade="red", status="Exercise")
    await drain(services)
    assert set(twilio.counts) == set(drill) and not set(twilio.counts) & set(plain)
    assert all("[演练]" in m.body for m in twilio.messages)


async def test_nothing_goes_to_an_unconfirmed_number(client, services, staff, clock, twilio):
    await services.subscribers.request("sms", "+8613900000000", D1, "zh_Hans")
    await published(client, staff, clock, grade="red")
    await drain(services)
    assert twilio.counts == {}


async def test_temporary_failures_retry_and_permanent_ones_stop(client, services, staff, clock, twilio):
    phones = await subscribe(services, 6, D1)
    twilio.retry_after = "0"
    twilio.fail_next(2, "429")
    twilio.fail_next(1, "500")
    twilio.fail_for(phones[5], "21610")
    twilio.fail_for(phones[4], "21211")
    message = await published(client, staff, clock, grade="red")
    await drain(services)
    assert set(twilio.counts) == set(phones[:4]) and all(c == 1 for c in twilio.counts.values())
    assert (await services.subscribers.get("sms", phones[5])).status == "stopped", "21610 unsubscribes"
    assert (await services.subscribers.get("sms", phones[4])).active, "an invalid number is not an opt-out"
    stats = await (await client.get(f"/api/v1/warnings/{message['id']}/deliveries", headers=staff["chief"])).json()
    sms = stats["channels"]["sms"]
    assert (sms["sent"], sms["failed"], sms["retrying"], sms["dead"]) == (4, 2, 0, 0)


async def test_hanging_provider_times_out_and_is_retried(client, services, staff, clock, twilio):
    phones = await subscribe(services, 1, D1)
    twilio.hang_seconds = 2
    twilio.fail_next(1, "hang")
    await published(client, staff, clock, grade="red")
    await drain(services)
    assert twilio.counts == {phones[0]: 1}


async def test_dead_letters_and_replay(client, services, staff, clock, twilio):
    phones = await subscribe(services, 2, D1)
    twilio.fail_for(phones[0], "503")
    message = await published(client, staff, clock, grade="red")
    await drain(services)
    assert twilio.counts == {phones[1]: 1}
    dead = await (await client.get("/api/v1/dispatch/dead-letters", headers=staff["chief"])).json()
    assert dead["total"] == 1 and dead["entries"][0]["to"] == phones[0] and dead["entries"][0]["attempt"] == "3"
    assert (await client.post("/api/v1/dispatch/dead-letters/replay", headers=staff["drafter"])).status == 403
    twilio.fail_for(phones[0], "")
    replayed = await (await client.post("/api/v1/dispatch/dead-letters/replay", headers=staff["chief"])).json()
    assert replayed == {"replayed": 1}
    await drain(services)
    assert twilio.counts == {phones[0]: 1, phones[1]: 1}
    stats = await (await client.get(f"/api/v1/warnings/{message['id']}/deliveries", headers=staff["chief"])).json()
    assert stats["channels"]["sms"]["dead"] == 0 and stats["channels"]["sms"]["sent"] == 2


async def test_redelivered_segment_sends_nothing_twice(client, services, staff, clock, twilio):
    phones = await subscribe(services, 5, D1)
    message = await published(client, staff, clock, grade="red")
    await drain(services)
    await services.redis.xadd(keys.DISPATCH_QUEUE, Segment(message["id"], "sms", "alert", tuple(phones)).to_fields())
    await drain(services)
    assert sum(twilio.counts.values()) == 5


async def test_claims_of_a_dead_worker_are_taken_over(client, services, staff, clock, twilio):
    phones = await subscribe(services, 5, D1)
    message = await published(client, staff, clock, grade="red")
    mid = message["id"]
    # A crashed worker claimed two recipients and never reported; two live ones hold one each.
    for owner in ("finishing", "dying"):
        await services.redis.set(keys.worker_heartbeat(owner), 1, ex=60)
    claims = ((phones[0], "crashed"), (phones[1], "crashed"), (phones[2], "finishing"), (phones[3], "dying"))
    for phone, owner in claims:
        await services.redis.hset(keys.delivery_state(mid, "sms", shard_of(phone)), phone, f"sending|{owner}|1")

    async def settle() -> None:
        for _ in range(5):
            await Planner(services, "p").run_once()
            await Worker(services, "me").run_once()

    from publisher.dispatch.planner import Planner

    await ensure_group(services.redis, keys.WARNINGS_EVENTS, keys.PLANNER_GROUP)
    await ensure_group(services.redis, keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP)
    await settle()
    assert set(twilio.counts) == {phones[0], phones[1], phones[4]}
    # The held ones are looked at again later instead of being dropped with the segment.
    rechecks = await services.redis.zrange(keys.DISPATCH_RETRY, 0, -1)
    assert len(rechecks) == 1 and set(json.loads(rechecks[0])["to"].split()) == {phones[2], phones[3]}
    # One owner finishes its send; the other dies (its heartbeat runs out).
    await services.redis.hset(keys.delivery_state(mid, "sms", shard_of(phones[2])), phones[2], "sent|SMx")
    await services.redis.delete(keys.worker_heartbeat("dying"))
    await services.redis.zadd(keys.DISPATCH_RETRY, {rechecks[0]: 0})
    await settle()
    assert twilio.counts == {phones[0]: 1, phones[1]: 1, phones[3]: 1, phones[4]: 1}


async def test_segment_of_a_dead_consumer_is_reclaimed(client, services, staff, clock, twilio, settings):
    phones = await subscribe(services, 3, D1)
    message = await published(client, staff, clock, grade="red")
    # The planner runs; a worker reads the segment and dies before doing anything.
    from publisher.dispatch.planner import Planner

    await ensure_group(services.redis, keys.WARNINGS_EVENTS, keys.PLANNER_GROUP)
    await ensure_group(services.redis, keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP)
    await Planner(services, "p").run_once()
    taken = await services.redis.xreadgroup(keys.DISPATCH_GROUP, "doomed", {keys.DISPATCH_QUEUE: ">"}, count=10)
    assert taken and twilio.counts == {}
    services.settings = settings.with_(dispatch_reclaim_after=0.05)
    worker = Worker(services, "rescuer")
    await asyncio.sleep(0.1)
    await worker.run_once()
    assert set(twilio.counts) == set(phones)
    pending = await services.redis.xpending(keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP)
    assert pending["pending"] == 0, "the rescued segment is acknowledged"
    stats = await (await client.get(f"/api/v1/warnings/{message['id']}/deliveries", headers=staff["chief"])).json()
    assert stats["channels"]["sms"]["sent"] == 3


async def test_rate_limit_is_held_across_workers(client, services, staff, clock, twilio, settings):
    phones = await subscribe(services, 40, D1, lang="en")
    rate = 12.0
    services.channels["sms"].rate = rate  # the channel says its provider's rate
    await published(client, staff, clock, grade="red")
    workers = [Worker(services.dispatch, f"w{i}") for i in range(3)]  # each with its own limiter instance
    await drain(services, workers)
    assert sum(twilio.counts.values()) == len(phones)
    stamps = sorted(m.at for m in twilio.messages)
    burst = max(1.0, rate / 10)
    # Over any window of T seconds at most rate × T + burst messages got through.
    for i, start in enumerate(stamps):
        for j in range(i, len(stamps)):
            window = stamps[j] - start
            assert j - i + 1 <= rate * window + burst + 1, (j - i + 1, window)
    assert stamps[-1] - stamps[0] >= (len(phones) - burst) / rate * 0.9


async def test_update_and_cancel_reach_exactly_the_earlier_recipients(client, services, staff, clock, twilio):
    first = await subscribe(services, 4, D1)
    original = await published(client, staff, clock, grade="red")
    await drain(services)
    # Someone subscribes to D1 afterwards, and someone in D2.
    late = await subscribe(services, 1, D1, start=50)
    d2 = await subscribe(services, 2, D2, start=60)
    twilio.counts.clear()
    update = await act(client, staff, "drafter", original["id"], "update", status=201, areas=[D1, D2])
    await act(client, staff, "approver", update["id"], "approve")
    await act(client, staff, "chief", update["id"], "approve")
    await drain(services)
    assert set(twilio.counts) == set(first + late + d2), "earlier recipients plus the grown area"
    twilio.counts.clear()
    newest = await subscribe(services, 1, D1, start=70)
    await services.subscribers.stop("sms", first[0])
    twilio.messages.clear()
    cancel = await act(client, staff, "drafter", update["id"], "cancel", status=201, reason="Rain stopped")
    await act(client, staff, "approver", cancel["id"], "approve")
    await drain(services)
    assert set(twilio.counts) == set(first[1:] + late + d2), "the cancel goes to who received it, not to newcomers"
    assert not set(twilio.counts) & set(newest)
    assert all("解除" in m.body for m in twilio.messages)


async def test_delivery_receipts_move_forward_only(client, services, staff, clock, twilio):
    phones = await subscribe(services, 2, D1)
    message = await published(client, staff, clock, grade="red")
    await drain(services)
    callback = {m.to: m.fields["StatusCallback"] for m in twilio.messages}
    assert callback[phones[0]] == f"http://warncast.test/webhooks/twilio/status?ref={message['id']}"
    path = callback[phones[0]].removeprefix("http://warncast.test")

    async def receipt(phone: str, status: str, **extra: str) -> int:
        resp = await signed_post(client, path, {"MessageSid": "SM1", "MessageStatus": status, "To": phone, **extra})
        return resp.status

    assert await receipt(phones[0], "delivered") == 204
    assert await receipt(phones[0], "sent") == 204  # late and out of order: ignored
    assert await receipt(phones[0], "failed") == 204  # after delivered: ignored
    assert await receipt(phones[1], "undelivered", ErrorCode="21610") == 204
    forged = await client.post(path, data={"MessageSid": "SM1", "MessageStatus": "delivered", "To": phones[1]})
    assert forged.status == 403
    # The plan id is part of what Twilio signed: moving a receipt to another warning breaks the signature.
    other = await client.post(
        "/webhooks/twilio/status?ref=x",
        data={"MessageStatus": "delivered", "To": phones[1]},
        headers={"X-Twilio-Signature": "forged"},
    )
    assert other.status == 403
    stats = await (await client.get(f"/api/v1/warnings/{message['id']}/deliveries", headers=staff["chief"])).json()
    sms = stats["channels"]["sms"]
    assert (sms["sent"], sms["delivered"], sms["failed"]) == (2, 1, 1)
    assert (await services.subscribers.get("sms", phones[1])).status == "stopped"


async def test_preview_shows_texts_segments_and_reach(client, services, staff, clock):
    await subscribe(services, 7, D1)
    await subscribe(services, 3, D1, start=10, min_grade="yellow")
    from tests.conftest import warning_body

    body = warning_body(clock, grade="yellow")
    resp = await client.post("/api/v1/warnings/preview", json=body, headers=staff["drafter"])
    assert resp.status == 200, await resp.text()
    result = await resp.json()
    sms = result["channels"]["sms"]
    assert sms["reach"] == 3 and sms["policy"] == "opted_in"
    assert sms["texts"]["zh-CN"]["encoding"] == "UCS-2" and sms["texts"]["zh-CN"]["segments"] >= 1
    assert sms["texts"]["en"]["text"].startswith("[Lanjiang Alert]")
    created = await (
        await client.post("/api/v1/warnings", json=warning_body(clock, grade="red"), headers=staff["drafter"])
    ).json()
    saved = await (await client.get(f"/api/v1/warnings/{created['id']}/preview", headers=staff["approver"])).json()
    assert saved["channels"]["sms"]["reach"] == 10 and saved["channels"]["sms"]["policy"] == "all"
    bad = await client.post("/api/v1/warnings/preview", json={"grade": "red"}, headers=staff["drafter"])
    assert bad.status == 422


async def test_outbox_mode_without_credentials(client, services, staff, clock, settings):
    await services.channels["sms"].close()
    offline = dataclasses.replace(services.channel_context, settings=settings.with_(twilio_account_sid=""))
    services.channels["sms"] = SmsChannel(offline)
    assert services.channels["sms"].outbox_mode
    phones = await subscribe(services, 2, D1)
    await published(client, staff, clock, grade="red")
    await drain(services)
    outbox = await (await client.get("/api/v1/outbox/sms", headers=staff["chief"])).json()
    assert sorted(e["to"] for e in outbox["entries"]) == sorted(phones)
    assert "红色" in outbox["entries"][0]["text"]


async def test_metrics(client, services, staff, clock, twilio):
    await subscribe(services, 3, D1)
    await published(client, staff, clock, grade="red")
    await drain(services)
    text = await (await client.get("/metrics")).text()
    assert 'warncast_deliveries_total{channel="sms",outcome="sent"} 3.0' in text
    assert "warncast_dispatch_queue_length 0.0" in text


async def test_large_index_sets_are_scanned_and_each_resident_planned_once(client, services, staff, clock, twilio):
    district = await subscribe(services, 30, D1)
    community = await subscribe(services, 700, community_in(services, D1), start=1000)
    for phone in district[:10]:  # in two affected areas: still one message
        await services.subscribers.subscribe("sms", phone, community_in(services, D1))
    message = await published(client, staff, clock, grade="red")
    # Unions over 50 members come by SSCAN instead of in one reply: the same recipients either way.
    await drain(services, planner=Planner(services, "scanning-planner", union_limit=50))
    assert set(twilio.counts) == set(district + community)
    assert all(count == 1 for count in twilio.counts.values())
    stats = await services.redis.hgetall(keys.delivery_stats(message["id"]))
    assert (stats["sms.planned"], stats["sms.sent"]) == ("730", "730")


async def test_an_interrupted_segment_keeps_what_was_sent_and_gives_back_the_rest(
    client, services, staff, clock, twilio, settings
):
    phones = await subscribe(services, 6, D1)
    slow = phones[2]
    twilio.hang_seconds = 1.5
    twilio.fail_for(slow, "hang")
    await ensure_group(services.redis, keys.WARNINGS_EVENTS, keys.PLANNER_GROUP)
    message = await published(client, staff, clock, grade="red")
    await Planner(services, "p").run_once()
    worker = Worker(services, "impatient")
    worker._segment_timeout = 0.3  # the watchdog gives up while the slow send is in flight
    await ensure_group(services.redis, keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP)
    await worker.run_once()
    states = {p: await services.redis.hget(keys.delivery_state(message["id"], "sms", shard_of(p)), p) for p in phones}
    assert states.pop(slow) is None  # given back: whoever takes the segment up sends it
    assert all(state.startswith("sent|") for state in states.values()), states
    assert (await services.redis.xpending(keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP))["pending"] == 1
    # The same worker takes its segment up again once it is idle long enough: the rest is sent once.
    twilio.fail_for(slow, "")
    await asyncio.sleep(1.6)  # the hung request ends at the stand-in (it counts it: it cannot know)
    worker._segment_timeout = 30
    worker.settings = settings.with_(dispatch_reclaim_after=0.05)
    await drain(services, [worker])
    counts = dict(twilio.counts)
    assert all(counts[p] == 1 for p in phones if p != slow) and counts[slow] == 2
    stats = await services.redis.hgetall(keys.delivery_stats(message["id"]))
    assert stats["sms.sent"] == "6"


async def test_a_workers_own_claim_from_a_failed_run_is_taken_up_again(client, services, staff, clock, twilio):
    phones = await subscribe(services, 2, D1)
    message = await published(client, staff, clock, grade="red")
    worker = Worker(services, "me-again")
    mid = message["id"]
    # A run of ours that failed and could not give its claim back (Redis was down, say).
    await services.redis.hset(keys.delivery_state(mid, "sms", shard_of(phones[0])), phones[0], "sending|me-again|gone")
    await drain(services, [worker])
    assert twilio.counts == {phones[0]: 1, phones[1]: 1}


async def test_a_long_segment_writes_what_it_has_sent_while_it_runs(
    client, services, settings, staff, clock, twilio, monkeypatch
):
    monkeypatch.setattr(worker_module, "STATE_WRITE_SECONDS", 0.05)  # well inside the slow send's 3 s
    phones = await subscribe(services, 6, D1)
    slow = phones[3]
    # The slow send outlasts a 3 s provider timeout, so it becomes a retry. A loaded machine then has
    # 3 s, not a fraction of one, to send the others and write them down before the segment ends.
    twilio.hang_seconds = 4
    twilio.fail_for(slow, "hang")
    await ensure_group(services.redis, keys.WARNINGS_EVENTS, keys.PLANNER_GROUP)
    message = await published(client, staff, clock, grade="red")
    await Planner(services, "p").run_once()
    await ensure_group(services.redis, keys.DISPATCH_QUEUE, keys.DISPATCH_GROUP)

    async def state(phone: str) -> str | None:
        return await services.redis.hget(keys.delivery_state(message["id"], "sms", shard_of(phone)), phone)

    async def others_sent() -> bool:
        states = [await state(p) for p in phones if p != slow]
        return all((s or "").startswith("sent|") for s in states)

    async with demo_services(settings.with_(provider_timeout=3.0)) as patient:
        running = asyncio.create_task(Worker(patient, "steady").run_once())
        while not running.done() and not await others_sent():  # noqa: ASYNC110 - Redis has no event to wait on
            await asyncio.sleep(0.02)
        # The others are recorded while the slow send is still in flight: a worker killed now would
        # leave only that one for the next worker to repeat.
        assert not running.done(), "nothing was written before the segment ended"
        assert (await state(slow)).startswith("sending|steady|")
        assert (await services.redis.hget(keys.delivery_stats(message["id"]), "sms.sent")) == "5"
        await running
    assert await state(slow) == "retry|1"
    stats = await services.redis.hgetall(keys.delivery_stats(message["id"]))
    assert (stats["sms.sent"], stats["sms.retrying"]) == ("5", "1")  # each counted once
