"""The monitoring queue after intake: corroboration, priority, routing, triage actions, the closed
loop to reporters (outbox), readings with thresholds and upstream CAP alerts."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime
from typing import Any

import pytest

from citizen_report.incidents import priority_for
from citizen_report.intake import submit_report
from citizen_report.model import ReportInput
from citizen_report.queue import consume, drain
from foundation.store import keys
from tests.citizen_report.test_reports import INSIDE, post_report
from tests.warncast.test_console import login
from warncast.web.app import create_app

NEAR = {"lat": 30.6670, "lon": 121.0625}  # ~100 m north of INSIDE
FAR = {"lat": 30.6800, "lon": 121.0625}  # ~1.5 km north


async def file(client: Any, category: str = "waterlogging", where: dict = INSIDE, **extra: Any) -> dict:
    body = {"category": category, "description": extra.pop("description", "Water knee deep here"), **where, **extra}
    resp = await post_report(client, body)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def incidents(client: Any, staff: Any, query: str = "") -> list[dict]:
    resp = await client.get(f"/api/v1/incidents?{query}", headers=staff["triage"])
    assert resp.status == 200, await resp.text()
    return (await resp.json())["incidents"]


async def outbox(services: Any) -> list[dict[str, str]]:
    return [fields for _id, fields in await services.redis.xrange(keys.REPORT_NOTIFICATIONS)]


async def test_corroboration_groups_nearby_reports_of_one_category(client, services, staff):
    for where in (INSIDE, NEAR, INSIDE):
        await file(client, where=where)
    await file(client, where=FAR)  # too far
    await file(client, category="road_damage", where=INSIDE, description="Road surface caved in")
    assert await drain(services.reports) == 5
    found = {(i["category"], i["count"]) for i in await incidents(client, staff)}
    assert found == {("waterlogging", 3), ("waterlogging", 1), ("road_damage", 1)}
    # Three reports raise the priority of a category-2 hazard to 1.
    [big] = [i for i in await incidents(client, staff) if i["count"] == 3]
    assert big["priority"] == 1 and big["department"] == "water_affairs"


async def test_time_window_and_configurable_distance(client, services, staff, clock):
    await file(client)
    await drain(services.reports)
    clock.advance(hours=7)  # beyond the default 6 h window
    await file(client)
    await drain(services.reports)
    assert sorted(i["count"] for i in await incidents(client, staff)) == [1, 1]
    services.reports.config = services.reports.config.__class__(corroboration_metres=5000)
    await file(client, where=FAR)
    await drain(services.reports)
    assert sorted(i["count"] for i in await incidents(client, staff)) == [1, 2]


async def test_priority_lane_and_deadlines(client, services, staff):
    await file(client, category="gas_leak", description="Strong smell of gas in the stairwell")
    await file(client, category="fallen_tree", where=FAR, description="Branch down, someone trapped under it")
    await file(client, category="road_damage", where=NEAR, description="Small pothole here")
    await drain(services.reports)
    found = {i["category"]: i for i in await incidents(client, staff)}
    assert found["gas_leak"]["lane"] == "priority" and found["gas_leak"]["priority"] == 1
    assert found["fallen_tree"]["lane"] == "priority", "a life-safety word in the text"
    assert found["road_damage"]["lane"] == "normal" and found["road_damage"]["priority"] == 3
    created = datetime.fromisoformat(found["gas_leak"]["created"])
    assert (datetime.fromisoformat(found["gas_leak"]["deadline"]) - created).total_seconds() == 30 * 60
    assert priority_for("other", False, 1) == 3 and priority_for("other", False, 6) == 1


async def test_routing_by_category_and_area_as_an_editable_table(client, services, staff):
    table = await (await client.get("/api/v1/routing", headers=staff["triage"])).json()
    table["rules"].append({"category": "waterlogging", "area": "990101001", "department": "city_management"})
    table["rules"].append({"category": "*", "area": "990102", "department": "housing"})
    assert (await client.put("/api/v1/routing", json=table, headers=staff["triage"])).status == 403
    resp = await client.put("/api/v1/routing", json=table, headers=staff["admin"])
    assert resp.status == 200, await resp.text()
    await file(client)  # waterlogging in 990101001 -> the street rule
    other_street = services.registry.get("990101002").point
    await file(client, where={"lat": other_street[0], "lon": other_street[1]})  # elsewhere -> the category rule
    lanhu = services.registry.get("990102").point
    await file(client, category="other", where={"lat": lanhu[0], "lon": lanhu[1]}, description="Odd noise here")
    await drain(services.reports)
    by_department = {(i["category"], i["department"]) for i in await incidents(client, staff)}
    assert by_department == {
        ("waterlogging", "city_management"),
        ("waterlogging", "water_affairs"),
        ("other", "housing"),
    }
    # Each department sees its own queue.
    mine = await incidents(client, staff, "department=housing")
    assert [i["category"] for i in mine] == ["other"]
    bad = await client.put("/api/v1/routing?lang=en", json={**table, "default": "nobody"}, headers=staff["admin"])
    assert bad.status == 422 and (await bad.json())["error"]["fields"][0]["field"] == "default"


async def test_the_whole_status_loop_notifies_the_reporter(client, services, staff):
    sms = await file(client, contact={"phone": "+8613800138000"}, consent=True)
    web = await file(client, where=NEAR)
    await drain(services.reports)
    [incident] = await incidents(client, staff)
    steps = [
        ("verify", {}, "verified"),
        ("assign", {"department": "fire_rescue"}, "assigned"),
        ("progress", {}, "in_progress"),
        ("resolve", {"reason": "Pumped out"}, "resolved"),
    ]
    for action, body, status in steps:
        resp = await client.post(f"/api/v1/incidents/{incident['id']}/{action}", json=body, headers=staff["triage"])
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == status
        tracked = await (await client.get(f"/api/v1/reports/{sms['tracking_code']}")).json()
        assert tracked["status"] == status
    notes = [n for n in await outbox(services) if n["tracking_code"] == sms["tracking_code"]]
    assert [n["status"] for n in notes] == ["received", "verified", "assigned", "in_progress", "resolved"]
    assert {n["channel"] for n in notes} == {"sms"} and {n["address"] for n in notes} == {"+8613800138000"}
    assert "Fire and rescue" in notes[2]["text"] and "Pumped out" in notes[4]["text"]
    # A reporter without a push channel reads the tracking page; nothing is queued for them.
    assert [n for n in await outbox(services) if n["tracking_code"] == web["tracking_code"]] == []
    assert (await (await client.get(f"/api/v1/reports/{web['tracking_code']}")).json())["status"] == "resolved"
    # Resolved is final; the audit log has every action.
    again = await client.post(f"/api/v1/incidents/{incident['id']}/verify", headers=staff["triage"])
    assert again.status == 409
    audit = await (await client.get("/api/v1/audit", headers=staff["admin"])).json()
    actions = [e["action"] for e in audit["entries"] if e["target"] == incident["id"]]
    assert sorted(actions) == ["incident.assign", "incident.progress", "incident.resolve", "incident.verify"]
    page = await (await client.get(f"/report/{sms['tracking_code']}?lang=en")).text()
    assert "Resolved" in page and "Pumped out" in page and "2 people reported" in page


async def test_reject_needs_a_reason_and_merge_marks_duplicates(client, services, staff):
    first = await file(client)
    second = await file(client, where=FAR)
    await drain(services.reports)
    a, b = sorted(await incidents(client, staff), key=lambda i: i["id"])
    resp = await client.post(f"/api/v1/incidents/{a['id']}/reject?lang=en", json={}, headers=staff["triage"])
    assert resp.status == 422 and (await resp.json())["error"]["fields"][0]["field"] == "reason"
    resp = await client.post(f"/api/v1/incidents/{b['id']}/merge", json={"into": a["id"]}, headers=staff["triage"])
    assert resp.status == 200 and (await resp.json())["count"] == 2
    duplicate = await (await client.get(f"/api/v1/reports/{second['tracking_code']}")).json()
    assert duplicate["status"] == "duplicate"
    assert [i["id"] for i in await incidents(client, staff)] == [a["id"]]
    resp = await client.post(
        f"/api/v1/incidents/{a['id']}/reject", json={"reason": "Not our city"}, headers=staff["triage"]
    )
    assert resp.status == 200
    for report in (first, second):
        tracked = await (await client.get(f"/api/v1/reports/{report['tracking_code']}")).json()
        assert tracked["status"] == "rejected" and tracked["status_note"] == "Not our city"
    assert (await client.post(f"/api/v1/incidents/{a['id']}/verify", headers=staff["drafter"])).status == 403


async def test_a_crashed_consumer_loses_nothing(client, services, staff):
    await file(client)
    # A consumer reads the item and dies before acknowledging it.
    from citizen_report.queue import ensure_group

    await ensure_group(services.reports)
    await services.redis.xreadgroup(keys.MONITORING_GROUP, "dead", {keys.MONITORING_QUEUE: ">"}, count=10)
    assert await consume(services.reports, "alive") == 0, "not stale yet"
    await services.redis.xclaim(
        keys.MONITORING_QUEUE,
        keys.MONITORING_GROUP,
        "dead",
        0,
        [e for e, _ in await services.redis.xrange(keys.MONITORING_QUEUE)],
        idle=60_000,
    )
    assert await consume(services.reports, "alive") == 1
    assert len(await incidents(client, staff)) == 1
    # Delivered twice (at-least-once) changes nothing.
    [(entry, fields)] = await services.redis.xrange(keys.MONITORING_QUEUE)
    from citizen_report.incidents import absorb

    await absorb(services.reports, entry, fields)
    assert [i["count"] for i in await incidents(client, staff)] == [1]


async def test_a_batch_that_fails_midway_acknowledges_only_the_items_it_absorbed(client, services, staff):
    """Items are acknowledged together at the end of a batch: those before a failure are, the
    failing one and those after it stay pending for the next try."""
    filed = [await file(client, where=where) for where in (INSIDE, FAR, NEAR)]
    second = keys.report(filed[1]["id"])
    record = await services.redis.get(second)
    await services.redis.set(second, "{not json")  # a record that cannot be read: absorbing it fails
    with pytest.raises(ValueError):
        await consume(services.reports, "one")
    pending = await services.redis.xpending_range(keys.MONITORING_QUEUE, keys.MONITORING_GROUP, "-", "+", 10)
    assert len(pending) == 2, "the first item was acknowledged, the other two were not"
    assert [i["count"] for i in await incidents(client, staff)] == [1]
    await services.redis.set(second, record)
    assert await consume(services.reports, "one") == 2  # its own pending items, again
    assert not await services.redis.xpending_range(keys.MONITORING_QUEUE, keys.MONITORING_GROUP, "-", "+", 10)
    assert sorted(i["count"] for i in await incidents(client, staff)) == [1, 2]  # NEAR joined INSIDE


async def test_one_consumer_works_at_a_time_and_another_takes_over_when_it_stops(client, services, staff):
    for where in (INSIDE, FAR):
        await file(client, where=where)
    assert await consume(services.reports, "first", lease_ms=300) == 2
    await file(client, where=NEAR)
    started = time.monotonic()
    assert await consume(services.reports, "second", lease_ms=300, block_ms=50) == 0, "the first is at work"
    assert time.monotonic() - started >= 0.05, "one that stands by waits before it asks again"
    assert await consume(services.reports, "first", lease_ms=300) == 1  # the holder renews and goes on
    await file(client, where=FAR, category="fallen_tree")
    await asyncio.sleep(0.4)  # the first stopped renewing: its lease lapses
    assert await consume(services.reports, "second", lease_ms=300) == 1
    assert await consume(services.reports, "first", lease_ms=300) == 0, "now the second is at work"
    assert sorted(i["count"] for i in await incidents(client, staff)) == [1, 1, 2]


async def test_a_serving_process_works_the_queue_and_hands_the_lease_on_when_it_stops(
    aiohttp_client, client, services, settings, clock
):
    # A second process, same Redis, with its background loops: its consumer takes the lease.
    serving = await aiohttp_client(create_app(settings.with_(run_scheduler=True), clock=clock))
    await file(client)
    for _ in range(100):
        if await services.redis.zcard(keys.BOARD_INDEX):  # its consumer absorbed the report
            break
        await asyncio.sleep(0.05)
    holder = await services.redis.get(keys.MONITORING_LEASE)
    assert holder and str(holder).endswith(f"-{os.getpid()}"), holder
    assert await drain(services.reports) == 0, "the serving process is at work"
    await serving.close()
    assert await services.redis.get(keys.MONITORING_LEASE) is None, "handed on at shutdown"
    await file(client, where=FAR)
    assert await drain(services.reports) == 1


async def test_concurrent_consumers_absorb_a_burst_of_one_category_once_each(client, services, staff):
    for n in range(30):  # spread over the city, all waterlogging: every absorb writes the same geo key
        where = {"lat": 30.62 + n * 0.005, "lon": 121.0625}
        await submit_report(services.reports, ReportInput(category="waterlogging", description="Water here", **where))
    # Each would take a batch of 8 and contend with the others for the geo key; one works, the rest stand by.
    handled = await asyncio.gather(*(consume(services.reports, f"c{n}", count=8) for n in range(4)))
    assert sorted(handled) == [0, 0, 0, 8]
    assert await drain(services.reports) == 0, "the one at work holds the lease"
    assert await drain(services.reports, f"c{handled.index(8)}") == 22
    assert [i["count"] for i in await incidents(client, staff)] == [1] * 30


async def test_readings_raise_items_only_on_a_change_of_colour(client, services, staff):
    def reading(value: float) -> dict:
        return {
            "sensor": "RG-7",
            "type": "rainfall_1h",
            "value": value,
            "time": "2025-07-01T10:00:00+08:00",
            "area": "990101001",
        }

    changes = []
    for value in (5, 12, 35, 40, 60, 70, 3):
        resp = await client.post("/api/v1/monitoring/readings", json=reading(value), headers=staff["sensor"])
        assert resp.status == 202, await resp.text()
        changes.append((await resp.json())["readings"][0]["changed"])
    assert changes == [False, False, True, False, True, False, True]
    queued = [
        i for i in (await (await client.get("/api/v1/monitoring/items", headers=staff["triage"])).json())["items"]
    ]
    assert [(i["previous"], i["colour"]) for i in queued] == [("green", "yellow"), ("yellow", "red"), ("red", "green")]
    await drain(services.reports)
    [sensor] = await incidents(client, staff, "kind=breach")
    assert sensor["kind"] == "breach" and sensor["details"]["colour"] == "green"
    bad = await client.post(
        "/api/v1/monitoring/readings?lang=en",
        json={"readings": [reading(1), {**reading(2), "type": "magic", "value": "high", "time": "yesterday"}]},
        headers=staff["sensor"],
    )
    assert bad.status == 422
    assert {f["field"] for f in (await bad.json())["error"]["fields"]} == {
        "readings[1].type",
        "readings[1].value",
        "readings[1].time",
    }
    assert (await client.post("/api/v1/monitoring/readings", json=reading(1))).status == 401
    assert (await client.post("/api/v1/monitoring/readings", json=reading(1), headers=staff["drafter"])).status == 403


CAP = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>UP-2025-0001</identifier><sender>met@province.example</sender>
  <sent>2025-07-01T10:00:00+08:00</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info><category>Met</category><event>Rainstorm</event><urgency>Immediate</urgency><severity>Severe</severity>
    <certainty>Likely</certainty><headline>Provincial rainstorm &lt;orange&gt; warning</headline>
    <area><areaDesc>Binjiang</areaDesc><geocode><valueName>GB</valueName><value>990101</value></geocode></area>
  </info>
</alert>"""


async def test_upstream_cap_alerts_parsed_safely(client, services, staff):
    headers = {**staff["sensor"], "Content-Type": "application/cap+xml"}
    resp = await client.post("/api/v1/monitoring/alerts", data=CAP.encode(), headers=headers)
    assert resp.status == 202, await resp.text()
    item = await resp.json()
    assert (
        item["severity"] == "Severe"
        and item["area"] == "990101"
        and item["title"] == "Provincial rainstorm <orange> warning"
    )
    await drain(services.reports)
    [alert] = await incidents(client, staff, "kind=alert")
    assert alert["priority"] == 2
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        "<alert>&lol2;</alert>"
    )
    xxe = '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><alert>&x;</alert>'
    for hostile in (laughs, xxe):
        resp = await client.post("/api/v1/monitoring/alerts?lang=en", data=hostile.encode(), headers=headers)
        assert resp.status == 422
        assert (await resp.json())["error"]["fields"][0]["code"] == "doctype"
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]><alert/>'.encode("utf-16")
    resp = await client.post("/api/v1/monitoring/alerts", data=utf16, headers=headers)
    assert resp.status == 422 and (await resp.json())["error"]["fields"][0]["code"] == "doctype"
    for bad, code in ((b"<alert", "xml"), (b"<html/>", "not_cap"), (b"x" * (300 * 1024), "too_large")):
        resp = await client.post("/api/v1/monitoring/alerts", data=bad, headers=headers)
        assert resp.status in (413, 422)
        if resp.status == 422:
            assert (await resp.json())["error"]["fields"][0]["code"] == code
    assert len((await (await client.get("/api/v1/monitoring/items", headers=staff["triage"])).json())["items"]) == 1


async def test_triage_board_in_the_console(client, services, users):
    await file(client, category="gas_leak", description="<img src=x onerror=alert(1)> gas smell")
    await drain(services.reports)
    csrf = await login(client, "chief", users["chief"])  # triage rights, and may draft warnings
    board = await (await client.get("/console/triage?lang=en")).text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in board and "<img src=x" not in board
    assert "/console/compose?event=gas_leak&amp;grade=orange&amp;area=990101001001" in board
    incident_id = services and (await services.redis.zrange(keys.BOARD_INDEX, 0, 0))[0]
    resp = await client.post(f"/console/triage/{incident_id}/verify", data={}, allow_redirects=False)
    assert resp.status == 403, "no CSRF token"
    resp = await client.post(
        f"/console/triage/{incident_id}/verify", data={"csrf_token": csrf, "back": "status=all"}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/console/triage?status=all"
    filtered = await (await client.get("/console/triage?status=received&lang=en")).text()
    assert "Nothing in the queue matches." in filtered
    verified = await (await client.get("/console/triage?status=verified&fragment=list&lang=en")).text()
    assert incident_id in verified and "<html" not in verified
