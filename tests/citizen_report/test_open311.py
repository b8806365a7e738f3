"""Open311 GeoReport v2: every endpoint in XML and JSON against the spec's field lists; and the
SMS / Telegram entry points for the chat channels."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from lxml import etree

from citizen_report.chat import TelegramReportFlow, parse_sms_report
from citizen_report.intake import submit_report
from citizen_report.queue import drain, items
from tests.citizen_report.test_reports import INSIDE, post_report

SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}
ATTRIBUTE_FIELDS = {
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
}


async def get(client: Any, path: str, fmt: str, status: int = 200) -> Any:
    path, _, query = path.partition("?")
    resp = await client.get(f"/open311/v2/{path}.{fmt}" + (f"?{query}" if query else ""))
    assert resp.status == status, await resp.text()
    if fmt == "json":
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        return await resp.json()
    assert resp.headers["Content-Type"] == "text/xml; charset=utf-8"
    text = await resp.text()
    assert text.startswith("<?xml version='1.0' encoding='utf-8'?>")
    return etree.fromstring(text.encode())


def xml_rows(root: Any, item: str) -> list[dict[str, Any]]:
    return [{child.tag: child for child in row} for row in root.findall(item)]


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_discovery_and_services(client, services, fmt):
    found = await get(client, "discovery", fmt)
    if fmt == "json":
        [endpoint] = found["endpoints"]
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert set(endpoint["formats"]) == {"text/xml", "application/json"}
        assert endpoint["url"].endswith("/open311/v2")
    else:
        assert found.tag == "discovery"
        assert [f.text for f in found.find("endpoints/endpoint/formats")] == ["text/xml", "application/json"]
    listed = await get(client, "services", fmt)
    rows = listed if fmt == "json" else xml_rows(listed, "service")
    assert len(rows) == 11 and all(set(r) == SERVICE_FIELDS for r in rows)
    definition = await get(client, "services/fire", fmt)
    if fmt == "json":
        assert definition["service_code"] == "fire"
        [attribute] = definition["attributes"]
        assert set(attribute) == ATTRIBUTE_FIELDS and attribute["datatype"] == "singlevaluelist"
        assert [v["key"] for v in attribute["values"]] == ["yes", "no"]
    else:
        assert definition.tag == "service_definition"
        attribute = definition.find("attributes/attribute")
        assert {c.tag for c in attribute} == ATTRIBUTE_FIELDS
        assert [v.findtext("key") for v in attribute.find("values")] == ["yes", "no"]
    missing = await get(client, "services/volcano", fmt, status=404)
    if fmt == "json":
        assert missing[0]["code"] == 404 and missing[0]["description"]
    else:
        assert missing.tag == "errors" and missing.findtext("error/code") == "404"


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_post_and_get_requests(client, services, staff, fmt):
    api_key = staff["admin"]["Authorization"].split()[1]
    form = {"service_code": "waterlogging", "lat": str(INSIDE["lat"]), "long": str(INSIDE["lon"])}
    form |= {"description": "Water over the kerb", "email": "someone@example.org", "phone": "+8613800138000"}
    form |= {"attribute[people_at_risk]": "yes", "first_name": "Jane"}
    denied = await client.post(f"/open311/v2/requests.{fmt}", data=form)
    assert denied.status == 403
    body = await denied.text()
    assert "api_key" in body and ("<errors>" in body if fmt == "xml" else body.startswith("[{"))
    resp = await client.post(f"/open311/v2/requests.{fmt}", data={**form, "api_key": api_key})
    assert resp.status == 200, await resp.text()
    if fmt == "json":
        [created] = await resp.json()
    else:
        created = {c.tag: c.text for c in etree.fromstring((await resp.text()).encode()).find("request")}
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    request_id = created["service_request_id"]
    [queued] = await items(services.reports)
    assert queued["ref"] == request_id and queued["lane"] == "priority", "people_at_risk=yes"
    await drain(services.reports)
    one = await get(client, f"requests/{request_id}", fmt)
    row = one[0] if fmt == "json" else {k: v.text for k, v in xml_rows(one, "request")[0].items()}
    assert set(row) == REQUEST_FIELDS
    assert row["status"] == "open" and row["service_code"] == "waterlogging"
    assert row["description"] in ("", None), "not shown before an officer verified it"
    text = await (await client.get(f"/open311/v2/requests/{request_id}.{fmt}")).text()
    assert "13800138000" not in text and "someone@example.org" not in text and "Jane" not in text
    assert str(INSIDE["lat"]) not in text, "the public location is rounded"
    listed = await get(client, "requests?status=open&service_code=waterlogging,fire", fmt)
    assert len(listed if fmt == "json" else xml_rows(listed, "request")) == 1
    closed = await get(client, "requests?status=closed", fmt)
    assert len(closed if fmt == "json" else xml_rows(closed, "request")) == 0


async def test_requests_filters_and_errors(client, services, staff):
    await post_report(client, {"category": "fire", "description": "Smoke from a window", **INSIDE})
    await drain(services.reports)
    [incident] = (await (await client.get("/api/v1/incidents", headers=staff["triage"])).json())["incidents"]
    await client.post(f"/api/v1/incidents/{incident['id']}/resolve", json={"reason": "Out"}, headers=staff["triage"])
    rows = await get(client, "requests?status=closed", "json")
    assert [r["status"] for r in rows] == ["closed"] and rows[0]["description"] == "Smoke from a window"
    assert rows[0]["expected_datetime"] and rows[0]["agency_responsible"] == "消防救援支队"
    assert await get(client, "requests?start_date=2001-01-01T00:00:00Z&end_date=2001-02-01T00:00:00Z", "json") == []
    span = await get(client, "requests?start_date=2001-01-01T00:00:00Z&end_date=2001-06-01T00:00:00Z", "json", 400)
    assert span[0]["code"] == 400 and "90" in span[0]["description"]
    assert (await get(client, "requests?status=pending", "xml", 400)).findtext("error/code") == "400"
    assert (await get(client, "requests?start_date=yesterday", "json", 400))[0]["code"] == 400
    assert (await get(client, "requests/999999", "json", 404))[0]["code"] == 404
    assert (await get(client, "requests?jurisdiction_id=elsewhere.example", "json", 404))[0]["code"] == 404
    only = await get(client, f"requests?service_request_id={rows[0]['service_request_id']}&status=open", "json")
    assert len(only) == 1, "service_request_id overrides the other filters"
    api_key = staff["admin"]["Authorization"].split()[1]
    bad = await client.post("/open311/v2/requests.json?lang=en", data={"api_key": api_key, "service_code": "fire"})
    assert bad.status == 400
    assert {e["code"] for e in await bad.json()} == {400}
    unknown = await client.post("/open311/v2/requests.json", data={"api_key": api_key, "service_code": "volcano"})
    assert unknown.status == 404


async def test_tokens(client, services):
    resp = await post_report(client, {"category": "fire", "description": "Smoke from a window", **INSIDE})
    created = await resp.json()
    [row] = await get(client, f"tokens/{created['tracking_code']}", "json")
    assert row == {"service_request_id": created["id"], "token": created["tracking_code"]}
    await get(client, "tokens/NOPE", "xml", 404)


def test_sms_parsing() -> None:
    from foundation.areas.registry import AreaRegistry, area_from_record
    from warncast.demo_city import demo_areas

    registry = AreaRegistry([area_from_record(r) for r in demo_areas()])
    assert parse_sms_report("hello", registry, phone="+8613800000000") is None
    parsed = parse_sms_report("上报 990102 路面塌陷 有车陷入", registry, phone="+8613800000000")
    assert parsed.category == "collapse" and parsed.area == "990102" and parsed.channel == "sms"
    named = parse_sms_report("report: gas smell in Jiangwan Subdistrict", registry, phone="+1", locale="en")
    assert named.category == "gas_leak" and named.area == "990101001" and named.locale == "en"
    plain = parse_sms_report("REPORT something odd near the school gate", registry, phone="+1")
    assert plain.category == "other" and plain.area is None and plain.address.startswith("something odd")


async def test_telegram_conversation_files_a_report(client, services):
    from tests.citizen_report.test_reports import gps_jpeg

    flow = TelegramReportFlow("4242", "en", services.catalogs, services.registry)
    first = flow.start()
    assert first.text == "What kind of hazard are you reporting?" and ("cat:fire", "Fire or smoke") in first.buttons
    assert flow.text("hello").buttons, "out of turn: the question again"
    where = flow.choose("cat:fire")
    assert where.request_location and "call 119 now" in where.text
    assert flow.state == "location"
    photo = flow.location(*INSIDE.values())
    assert ("skip", "Skip") in photo.buttons
    describe = flow.photo(gps_jpeg())
    assert describe.text == "Describe what you see, in a few words."
    done = flow.text("Flames on the 3rd floor balcony")
    assert done.finished is not None and flow.state == "done"
    submitted = await submit_report(services.reports, done.finished, idempotency_key="tg-update-1")
    assert submitted.report.reply_channel == "telegram" and submitted.report.reply_address == "4242"
    assert len(submitted.report.photos) == 1
    [item] = await items(services.reports)
    assert item["lane"] == "priority"
    # Typing a place instead of sharing a location; cancelling.
    other = TelegramReportFlow("1", "zh_Hans", services.catalogs, services.registry)
    other.start()
    other.choose("cat:waterlogging")
    lost = other.text("火星")
    assert lost.text == other._("I could not find that place. Share your location or type a street name.")
    assert other.state == "location"
    assert other.text("江湾街道").buttons and other.draft.area == "990101001"
    assert other.choose("skip").text and other.state == "description"
    assert other.text("/cancel").finished is None and other.state == "cancelled"


# Exactly the spec: every error as its list of {code, description}, in both formats


async def both(client: Any, method: str, path: str, **kwargs: Any) -> tuple[int, list[Any], dict[str, str]]:
    """One request in JSON and in XML: (status, [json document, xml document as JSON-like values],
    the JSON answer's headers); the two statuses are the same."""
    answers = []
    for fmt in ("json", "xml"):
        sent = dict(kwargs)
        if isinstance(sent.get("data"), bytes):  # a large body is sent from a file-like object
            sent["data"] = io.BytesIO(sent["data"])
        resp = await client.request(method, path.replace("{fmt}", fmt), **sent)
        text = await resp.text()
        if fmt == "json":
            assert resp.headers["Content-Type"] == "application/json; charset=utf-8", text
            status, headers, document = resp.status, dict(resp.headers), json.loads(text)
        else:
            assert resp.status == status and resp.headers["Content-Type"] == "text/xml; charset=utf-8", text
            document = from_xml(etree.fromstring(text.encode()))
        answers.append(document)
    return status, answers, headers


def from_xml(element: Any) -> Any:
    """An Open311 XML document as the values its JSON form holds (lists of items, texts)."""
    if element.tag in ("errors", "service_requests", "services"):
        return [from_xml(child) for child in element]
    if len(element) == 0:
        return element.text
    return {child.tag: from_xml(child) for child in element}


def as_text(document: Any) -> Any:
    """JSON values as the texts XML carries."""
    if isinstance(document, list):
        return [as_text(item) for item in document]
    if isinstance(document, dict):
        return {k: as_text(v) for k, v in document.items()}
    if isinstance(document, bool):
        return "true" if document else "false"
    return None if document in ("", None) else str(document)


def assert_errors(answers: list[Any], code: int, *starts: str) -> None:
    as_json, as_xml = answers
    assert as_text(as_json) == as_xml, "the two formats say the same"
    assert [e["code"] for e in as_json] == [code] * len(as_json) and all(
        set(e) == {"code", "description"} for e in as_json
    )
    for start in starts:
        assert any(e["description"].startswith(start) for e in as_json), (start, as_json)


async def test_every_error_is_the_spec_list_in_both_formats(client, services, staff):
    status, answers, _ = await both(client, "GET", "/open311/v2/nowhere.{fmt}")
    assert status == 404
    assert_errors(answers, 404)
    resp = await client.get("/open311/v2/services.csv")  # an unknown format: the default, XML
    assert resp.status == 404 and resp.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert etree.fromstring(await resp.read()).findtext("error/code") == "404"
    status, answers, headers = await both(client, "DELETE", "/open311/v2/requests.{fmt}")
    assert status == 405 and set(headers["Allow"].split(",")) >= {"GET", "POST"}
    assert_errors(answers, 405)
    big = b"description=" + b"x" * (2 * 1024 * 1024)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, answers, _ = await both(client, "POST", "/open311/v2/requests.{fmt}", data=big, headers=form)
    assert status == 413
    assert_errors(answers, 413)
    status, answers, _ = await both(client, "GET", "/open311/v2/services.{fmt}", headers={"Authorization": "Bearer no"})
    assert status == 403
    assert_errors(answers, 403)


async def test_post_errors_name_open311_fields_and_attributes_are_checked(client, services, staff):
    api_key = staff["admin"]["Authorization"].split()[1]
    base = {"api_key": api_key, "service_code": "waterlogging", "description": "Water over the kerb"}
    cases = [
        ({"lat": "30.6", "long": "500"}, "long: "),
        ({"lat": "30.6"}, "long: "),
        ({"attribute[people_at_risk]": "maybe"}, "attribute[people_at_risk]: "),
        ({"attribute[colour]": "red", "address_string": "Riverside Road"}, "attribute[colour]: "),
    ]
    for change, start in cases:
        status, answers, _ = await both(client, "POST", "/open311/v2/requests.{fmt}?lang=en", data={**base, **change})
        assert status == 400, (change, answers)
        assert_errors(answers, 400, start)
        assert not any(e["description"].startswith("lon:") for e in answers[0]), answers
    assert await items(services.reports) == []


async def test_a_request_without_a_location_has_no_lat_long_and_notices_only_media(client, services, staff):
    api_key = staff["admin"]["Authorization"].split()[1]
    form = {"api_key": api_key, "service_code": "waterlogging", "description": "Water over the kerb"}
    form |= {"address_string": "Riverside Road by the school", "attribute[people_at_risk]": "no"}
    resp = await client.post("/open311/v2/requests.json", data=form)
    assert resp.status == 200, await resp.text()
    [created] = await resp.json()
    assert created["service_notice"] == "", "no media_url was sent"
    status, answers, _ = await both(client, "GET", f"/open311/v2/requests/{created['service_request_id']}.{{fmt}}")
    assert status == 200
    [row], [xml_row] = answers
    assert set(row) == REQUEST_FIELDS - {"lat", "long"}, "absent, not empty strings"
    assert as_text(row) == xml_row, "field by field the same in both formats"
    with_media = await client.post(
        "/open311/v2/requests.json?lang=en", data={**form, "media_url": "https://x.example/a.jpg"}
    )
    [notice] = await with_media.json()
    assert "media_url" in notice["service_notice"]
    located = await client.post("/open311/v2/requests.xml", data={**form, "lat": "30.666", "long": "121.0625"})
    request_id = etree.fromstring(await located.read()).findtext("request/service_request_id")
    [row] = await get(client, f"requests/{request_id}", "json")
    assert row["lat"] == 30.666 and row["long"] == 121.062  # numbers, rounded to ~100 m
