"""The city's warning record (/console/record): figures from a seeded history with known answers,
through the real app and a real Redis; CSV downloads; one warning's after-action timeline; who may
read it; both languages."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from typing import Any

from citizen_report.queue import drain as drain_queue
from foundation.store import keys
from tests.citizen_report.test_reports import INSIDE
from tests.citizen_report.test_triage import FAR, file
from tests.conftest import warning_body
from tests.delivery_helpers import drain
from tests.publisher.test_dispatch import D1, subscribe
from tests.publisher.test_workflow import act
from tests.warncast.test_console import login
from warncast.web.tables import Table, to_csv


async def drafted_and_published(
    client: Any, staff: Any, clock: Any, seconds: int, sync: bool = False, **overrides: Any
) -> dict:
    """A warning created now and published `seconds` later (two approvals for orange and red);
    `sync`: set the clock to the real time before each step."""

    def now() -> None:
        if sync:
            clock.now = datetime.now(clock.now.tzinfo).replace(microsecond=0)

    now()
    resp = await client.post("/api/v1/warnings", json=warning_body(clock, **overrides), headers=staff["drafter"])
    assert resp.status == 201, await resp.text()
    message = await resp.json()
    clock.advance(seconds=seconds)
    now()
    await act(client, staff, "drafter", message["id"], "submit")
    if overrides.get("grade", "red") in ("orange", "red"):
        now()
        await act(client, staff, "approver", message["id"], "approve", comment="checked")
    now()
    result = await act(client, staff, "chief", message["id"], "approve")
    assert result["state"] == "published"
    return result


async def approved(client: Any, staff: Any, message_id: str) -> None:
    """Approve an update or cancellation until the grade's quorum publishes it."""
    if (await act(client, staff, "approver", message_id, "approve"))["state"] != "published":
        assert (await act(client, staff, "chief", message_id, "approve"))["state"] == "published"


async def table(client: Any, year: int, name: str, lang: str = "en") -> list[list[str]]:
    resp = await client.get(f"/console/record?year={year}&format=csv&table={name}&lang={lang}")
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/csv"
    assert f"warncast-record-{year}-{name}.csv" in resp.headers["Content-Disposition"]
    text = (await resp.read()).decode("utf-8")
    assert text.startswith("\ufeff"), "a byte-order mark, so spreadsheets read UTF-8"
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


async def seed_warnings(client: Any, services: Any, staff: Any, clock: Any) -> dict[str, dict]:
    first = await drafted_and_published(client, staff, clock, 100)
    second = await drafted_and_published(client, staff, clock, 200)
    third = await drafted_and_published(client, staff, clock, 400)
    heat = await drafted_and_published(client, staff, clock, 50, grade="yellow", event="heat")
    await drafted_and_published(client, staff, clock, 10, status="Exercise")  # a drill: left out
    update = await act(
        client, staff, "drafter", first["id"], "update", status=201, expires=warning_body(clock)["expires"]
    )
    clock.advance(seconds=30)
    await approved(client, staff, update["id"])
    cancel = await act(client, staff, "drafter", second["id"], "cancel", status=201, reason="rain has stopped")
    await approved(client, staff, cancel["id"])
    # What the workers and receipts would have recorded (publisher/record.py): known delivery times.
    for message, sms_s, telegram_s in ((first, 300, 700), (second, 100, None)):
        published = 1_800_000_000_000
        fields = {"published_at": published, "sms.first_at": published + 1000, "sms.last_at": published + sms_s * 1000}
        if telegram_s:
            fields |= {"telegram.first_at": published + 500, "telegram.last_at": published + telegram_s * 1000}
        await services.redis.hset(keys.delivery_record(message["id"]), mapping=fields)
    return {"first": first, "second": second, "third": third, "heat": heat, "update": update, "cancel": cancel}


async def test_warning_figures_from_a_seeded_history(client, services, staff, users, clock):
    await seed_warnings(client, services, staff, clock)
    await login(client, "drafter", users["drafter"])
    year = clock.now.year
    grades = {row[0]: row[1] for row in (await table(client, year, "warnings_by_grade"))[1:]}
    assert grades == {"Blue": "0", "Yellow": "1", "Orange": "0", "Red": "3"}, "alerts only, no drill"
    events = (await table(client, year, "warnings_by_event"))[1:]
    assert events == [["Rainstorm", "3"], ["High temperature", "1"]]
    month = [r for r in (await table(client, year, "warnings_by_month"))[1:] if r[0] == f"{year}-{clock.now.month:02d}"]
    assert month == [[f"{year}-{clock.now.month:02d}", "0", "1", "0", "3", "4"]]
    header, *rows = await table(client, year, "release_time")
    assert header == ["Grade", "Messages", "p50 (s)", "p95 (s)", "Target (s)", "Within the target"]
    release = {row[0]: row[1:] for row in rows}
    # red: 100, 200, 400 and the update's 30 s; nearest rank: p50 the 2nd of 4, p95 the 4th.
    assert release["Red"] == ["4", "100.0", "400.0", "300", "3"]
    assert release["Yellow"] == ["1", "50.0", "50.0", "", ""]
    assert release["Blue"] == ["0", "", "", "", ""]
    delivery = {row[0]: row[1:] for row in (await table(client, year, "delivery_time"))[1:]}
    assert delivery["SMS"] == ["2", "1.0", "1.0", "100.0", "300.0", "2"]
    assert delivery["Telegram"] == ["1", "0.5", "0.5", "700.0", "700.0", "0"], "700 s misses the 10 minutes"
    listing = (await table(client, year, "warnings"))[1:]
    assert len(listing) == 4 and [r[6] for r in listing].count("yes") == 1

    page = await (await client.get(f"/console/record?year={year}&lang=en")).text()
    assert "<svg" in page and '<title id="chart-release_time-title">' in page
    assert "red target: 5 min" in page and "over the target" in page, "the chart says it, not colour alone"
    zh = await (await client.get(f"/console/record?year={year}&lang=zh_Hans")).text()
    assert "城市预警档案" in zh and "从拟稿到发布的用时" in zh and "红色目标：5分钟" in zh
    assert "Warnings by grade" not in zh


async def test_report_figures_and_triage_against_deadlines(client, services, staff, users, clock):
    start = clock.now
    for _ in range(3):
        await file(client, where=INSIDE)  # one incident of three reports
    await file(client, category="road_damage", where=FAR, description="Road surface caved in")
    assert await drain_queue(services.reports) == 4
    found = await (await client.get("/api/v1/incidents", headers=staff["triage"])).json()
    water = next(i for i in found["incidents"] if i["category"] == "waterlogging")
    road = next(i for i in found["incidents"] if i["category"] == "road_damage")
    water_deadline = services.reports.config.deadline_for(water["priority"])

    async def triage(incident: dict, action: str, minutes: int) -> None:
        clock.now = start + timedelta(minutes=minutes)
        resp = await client.post(f"/api/v1/incidents/{incident['id']}/{action}", json={}, headers=staff["triage"])
        assert resp.status == 200, await resp.text()

    await triage(water, "verify", 10)
    await triage(road, "resolve", 20)
    await triage(water, "resolve", water_deadline + 5)  # five minutes late
    await login(client, "triage", users["triage"])
    year = start.year
    categories = dict((await table(client, year, "reports_by_category"))[1:])
    assert categories == {"Waterlogged street or underpass": "3", "Damaged road, bridge or manhole": "1"}
    [(name, code, count)] = (await table(client, year, "reports_by_area"))[1:]  # FAR is in the same community
    assert (code, count) == ("990101001001", "4") and name == services.registry.get(code).name_in("en")
    hours = dict((await table(client, year, "reports_by_hour"))[1:])
    assert hours[f"{start.hour:02d}:00"] == "4" and sum(map(int, hours.values())) == 4
    rows = (await table(client, year, "triage_time"))[1:]
    figures = {(r[0].split(" (")[0], r[1]): r[2:] for r in rows if r[2] != "0"}
    acted, resolved = "First action", "Resolved"
    assert figures[(acted, f"Priority {water['priority']}")] == ["1", "10", "10", "1", "0"]
    assert figures[(resolved, f"Priority {water['priority']}")] == [
        "1",
        str(water_deadline + 5),
        str(water_deadline + 5),
        "0",
        "1",
    ], "past its deadline"
    assert figures[(acted, f"Priority {road['priority']}")] == ["1", "20", "20", "1", "0"]
    assert figures[(resolved, f"Priority {road['priority']}")] == ["1", "20", "20", "1", "0"]
    assert len(figures) == 4


async def test_a_warnings_timeline_with_deliveries_and_audit(client, services, staff, users, clock):
    await subscribe(services, 3, D1, channel="telegram", min_grade="yellow")  # outbox mode: no provider
    # The workers and the audit log keep real time: here the app's clock keeps it too.
    warning = await drafted_and_published(client, staff, clock, 0, sync=True)
    await drain(services)
    clock.now = datetime.now(clock.now.tzinfo).replace(microsecond=0)
    record = await services.redis.hgetall(keys.delivery_record(warning["id"]))
    assert record["telegram.planned"] == "3" and int(record["telegram.first_at"]) >= int(record["published_at"])
    cancel = await act(client, staff, "drafter", warning["id"], "cancel", status=201, reason="all clear")
    await approved(client, staff, cancel["id"])
    await drain(services)

    csrf = await login(client, "chief", users["chief"])
    page = await (await client.get(f"/console/record/warnings/{warning['id']}?lang=en")).text()
    order = [
        "step-drafted",
        "step-submitted",
        "step-approved",
        "step-approved",
        "step-published",
        "step-first_delivery",
        "step-last_delivery",
        "step-cancel_drafted",
        "step-cancel_published",
    ]
    at = 0
    for step in order:  # each found after the one before: in the order they happened
        assert f'class="{step}"' in page[at + 1 :], (step, re.findall(r"step-[a-z_]+", page))
        at = page.index(f'class="{step}"', at + 1)
    assert "s after the draft" in page and "3 planned" in page and "all clear" in page
    assert "Audit entries behind this timeline" in page and 'id="audit-' in page
    assert page.count('href="#audit-') >= 6, "drafted, submitted, two approvals, published, cancel..."
    # A drafter sees the timeline but not the audit entries (audit.read is for chiefs and admins).
    await client.post("/console/logout", data={"csrf_token": csrf})
    await login(client, "drafter", users["drafter"])
    page = await (await client.get(f"/console/record/warnings/{warning['id']}?lang=zh_Hans")).text()
    assert "事后复盘时间线" in page and "首次送达" in page and 'id="audit-' not in page
    assert (await client.get("/console/record/warnings/nope")).status == 404


async def test_who_may_read_the_record_and_bad_input(client, services, users, clock):
    resp = await client.get("/console/record", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/login")
    csrf = await login(client, "sensor", users["sensor"])
    assert (await client.get("/console/record")).status == 403
    assert (await client.get("/console/record?format=csv&table=warnings_by_grade")).status == 403
    assert (await client.get("/console/record/warnings/x")).status == 403
    await client.post("/console/logout", data={"csrf_token": csrf})
    await login(client, "approver", users["approver"])
    assert (await client.get("/console/record")).status == 200
    resp = await client.get("/console/record?format=csv&table=nope&lang=en")
    assert resp.status == 422 and "No such table" in await resp.text()
    resp = await client.get("/console/record?year=19x&lang=zh_Hans")
    assert resp.status == 422 and "年份" in await resp.text()
    assert (await client.get("/console/record?format=pdf")).status == 422


def test_csv_escaping_and_formula_injection() -> None:
    rows = [['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", 'a "quoted", text', "two\nlines", -5, 1.5, None]]
    text = to_csv(Table("t", "T", ["a", "b", "c", "d", "e", "f", "g", "h", "i"], rows))
    [header, row] = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert row == [
        '\'=HYPERLINK("http://x")',
        "'+1",
        "'-2",
        "'@SUM(A1)",
        'a "quoted", text',
        "two\nlines",
        "-5",
        "1.5",
        "",
    ]
    assert text.endswith("\r\n") and '"a ""quoted"", text"' in text
