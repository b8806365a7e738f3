"""Nothing of a warning outlives its retention: every key the release and the delivery of a warning
leave behind either expires within WARNCAST_DELIVERY_RETENTION_DAYS of the warning's end or is part
of the kept record (the warning and its thread). Keys are classified by their family in
foundation/store/keys.py, so a new per-warning key family without an expiry fails here."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest

from citizen_report.queue import drain as drain_queue
from foundation.store import keys
from foundation.store.inventory import OTHER, Classifier, scan_all
from foundation.store.streams import ensure_group
from publisher.dispatch.notifications import Notifier
from tests.citizen_report.test_reports import BODY
from tests.delivery_helpers import drain, signed_post, sms_settings
from tests.publisher.test_dispatch import D1, subscribe
from tests.publisher.test_workflow import act, published
from tests.standins.twilio import TwilioStandIn

DAYS = 2
RETENTION = DAYS * 86400
# The public record: the warnings, and the city's record of them (publisher/record.py) with the
# audit entries about them, which outlive the delivery records they summarise.
KEPT = {keys.warning.__name__, keys.thread.__name__, keys.delivery_record.__name__, keys.audit_by_target.__name__}
# Families that must always expire by themselves, whatever else a test left (keys.py names).
SHORT_LIVED = {
    keys.identifier_sequence.__name__,
    keys.session.__name__,
    keys.login_failures.__name__,
    keys.rate_bucket.__name__,
    keys.report_rate.__name__,
    keys.report_idempotency.__name__,
    keys.telegram_flow.__name__,
    keys.worker_heartbeat.__name__,
    "READY_PROBE",
    "durable_mark",
    keys.counted_batches.__name__,
}
DELIVERY = {
    keys.plan.__name__,
    keys.delivery_stats.__name__,
    keys.delivery_state.__name__,
    keys.thread_recipients.__name__,
}


@pytest.fixture
def settings(settings: Any, twilio: TwilioStandIn) -> Any:
    return sms_settings(settings, twilio.url, dispatch_max_attempts=2, delivery_retention_days=DAYS)


async def store(services: Any) -> dict[str, tuple[str, int]]:
    """Every key: its family and TTL in seconds (-1: none)."""
    classify = Classifier()
    found = {}
    async for key in scan_all(services.redis):
        if (ttl := await services.redis.ttl(key)) != -2:  # -2: expired since the scan
            found[key] = (classify.family(key), ttl)
    return found


async def approve(client: Any, staff: Any, message_id: str, grade: str) -> dict:
    if grade in ("orange", "red"):
        await act(client, staff, "approver", message_id, "approve")
        return await act(client, staff, "chief", message_id, "approve")
    return await act(client, staff, "approver", message_id, "approve")


def old_ms() -> int:
    """A moment just beyond the retention."""
    return int((time.time() - RETENTION - 3600) * 1000)


@pytest.mark.parametrize(("grade", "end"), [("red", "expire"), ("yellow", "expire"), ("red", "cancel")])
async def test_nothing_of_a_warning_outlives_its_retention(client, services, staff, clock, twilio, grade, end):
    redis = services.redis
    phones = await subscribe(services, 4, D1, min_grade="yellow")
    chats = await subscribe(services, 1, D1, channel="telegram", min_grade="yellow")  # outbox mode
    stale = f"{old_ms()}-0"
    await redis.xadd(keys.outbox("telegram"), {"to": "0", "text": "long ago"}, id=stale)
    twilio.retry_after = "0"
    twilio.fail_for(phones[3], "500")  # every attempt: a dead letter
    original = await published(client, staff, clock, grade=grade)
    await drain(services)
    assert set(twilio.counts) == set(phones[:3]), "three sent; one failed every attempt"
    callback = next(m.fields["StatusCallback"] for m in twilio.messages if m.to == phones[0])
    receipt = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": phones[0]}
    assert (await signed_post(client, callback.removeprefix("http://warncast.test"), receipt)).status == 204
    assert not await redis.xrange(keys.outbox("telegram"), "-", stale), "outbox entries go after the retention"
    assert await redis.xlen(keys.outbox("telegram")) == 1

    # While the warning is in force, its delivery records (its recipients above all, whom an update or
    # a cancellation goes to) are kept until it ends, and the retention after that.
    async def delivery_ttls() -> dict[str, set[int]]:
        ttls: dict[str, set[int]] = {}
        for family, ttl in (await store(services)).values():
            if family in DELIVERY:
                ttls.setdefault(family, set()).add(ttl)
        assert set(ttls) == DELIVERY
        return ttls

    for ttls in (await delivery_ttls()).values():
        assert all(6 * 3600 + RETENTION - 60 <= t <= 6 * 3600 + RETENTION for t in ttls), ttls
    # An update that extends the warning keeps them for longer.
    later = (clock.now + timedelta(hours=12)).isoformat()
    update = await act(client, staff, "drafter", original["id"], "update", status=201, expires=later)
    assert (await approve(client, staff, update["id"], grade))["state"] == "published"
    await drain(services)
    for ttls in (await delivery_ttls()).values():
        assert all(12 * 3600 + RETENTION - 60 <= t <= 12 * 3600 + RETENTION for t in ttls), ttls
    dead = await redis.lrange(keys.DISPATCH_DEAD, 0, -1)
    assert len(dead) == 2, "the alert and the update to the failing phone"
    await redis.lset(keys.DISPATCH_DEAD, 1, json.dumps({**json.loads(dead[1]), "at": old_ms()}))  # long ago

    ids = [original["id"], update["id"]]
    if end == "expire":
        clock.advance(hours=13)
        assert await services.warnings.run_due() == 1
    else:
        cancel = await act(client, staff, "drafter", update["id"], "cancel", status=201, reason="over")
        ids.append(cancel["id"])
        assert (await act(client, staff, "approver", cancel["id"], "approve"))["state"] == "published"
    twilio.counts.clear()
    await drain(services)
    if (grade, end) == ("red", "expire"):
        assert set(twilio.counts) == set(phones[:3]), "the expiry notice went to the recipients"

    found = await store(services)
    assert not [k for k, (family, _) in found.items() if family == OTHER], "every key is named in keys.py"
    families = set()
    for key, (family, ttl) in found.items():
        if family in SHORT_LIVED:
            assert ttl > 0, key
            continue
        if not any(i in key for i in ids):
            continue
        families.add(family)
        if family in KEPT:
            assert ttl == -1, f"{key}: the warnings and their record are kept"
        else:
            assert 0 < ttl <= RETENTION, f"{key} ({family}) outlives the retention: TTL {ttl}"
    assert families == KEPT | DELIVERY, "the test saw every kind of record a warning leaves"
    [young] = await redis.lrange(keys.DISPATCH_DEAD, 0, -1)
    assert young == dead[0], "the dead letter older than the retention was dropped when the warning ended"
    assert await redis.xlen(keys.DISPATCH_QUEUE) == 0 and await redis.zcard(keys.DISPATCH_RETRY) == 0
    assert await redis.xlen(keys.outbox("telegram")) >= 2, chats


async def test_queue_streams_drop_entries_older_than_the_retention(client, services):
    redis = services.redis
    stale = f"{old_ms()}-0"
    await redis.xadd(keys.MONITORING_QUEUE, {"kind": "breach", "sensor": "s1"}, id=stale)  # absorbed long ago
    await redis.xgroup_create(keys.MONITORING_QUEUE, keys.MONITORING_GROUP, id="$")
    resp = await client.post("/api/v1/reports?lang=en", json=BODY)
    assert resp.status == 201, await resp.text()
    await drain_queue(services.reports)
    assert [entry_id for entry_id, _ in await redis.xrange(keys.MONITORING_QUEUE)] != [stale]
    assert not await redis.xrange(keys.MONITORING_QUEUE, "-", stale), "items older than the retention go"
    assert await redis.xlen(keys.MONITORING_QUEUE) == 1

    await ensure_group(redis, keys.REPORT_NOTIFICATIONS, keys.REPORT_NOTIFY_GROUP)
    await redis.xadd(keys.REPORT_NOTIFICATIONS, {"channel": "web", "tracking_code": "X"}, id=stale)
    await Notifier(services.dispatch, "test-notifier").run_once()
    assert await redis.xlen(keys.REPORT_NOTIFICATIONS) == 0
