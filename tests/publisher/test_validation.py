"""Bad input on every field: a clear error naming the field, in the request's language, and
nothing stored."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import warning_body


def _set(body: dict, path: str, value: Any) -> dict:
    target = body
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[part]
    if value is DELETE:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value
    return body


DELETE = object()
LONG = "x" * 161

CASES = [
    ("grade", DELETE, "grade", "required"),
    ("grade", "purple", "grade", "choice"),
    ("grade", 3, "grade", "choice"),
    ("event", "alien_invasion", "event", "choice"),
    ("category", "Geo", "category", "mismatch"),
    ("category", "Weather", "category", "choice"),
    ("status", "Draft", "status", "choice"),
    ("urgency", "Soon", "urgency", "choice"),
    ("certainty", True, "certainty", "choice"),
    ("areas", "990101", "areas", "type"),
    ("areas", ["000000"], "areas[0]", "unknown_area"),
    ("areas", [], "areas", "required"),
    ("expires", DELETE, "expires", "required"),
    ("expires", "tomorrow", "expires", "datetime"),
    ("expires", "2020-01-01T00:00:00+08:00", "expires", "in_past"),
    ("expires", 1234, "expires", "datetime"),
    ("info", DELETE, "info", "required"),
    ("info.en", DELETE, "info.en", "required"),
    ("info.fr", {"headline": "x", "description": "y"}, "info.fr", "unknown_language"),
    ("info.en.headline", DELETE, "info.en.headline", "required"),
    ("info.en.headline", "   ", "info.en.headline", "required"),
    ("info.en.headline", LONG, "info.en.headline", "too_long"),
    ("info.en.headline", ["a"], "info.en.headline", "type"),
    ("info.en.headline", "bell\x07", "info.en.headline", "control_characters"),
    ("info.zh-CN.description", "长" * 3001, "info.zh-CN.description", "too_long"),
    ("info.en.colour", "red", "info.en.colour", "unknown_field"),
    ("priority", "high", "priority", "unknown_field"),
    ("polygons", [[[30.6, 121.0], [30.6, 121.1], [30.7, 121.1]]], "polygons[0]", "points"),
    ("polygons", [[[30.6, 121.0], [30.6, 121.1], [30.7, 121.1], [30.7, 121.0]]], "polygons[0]", "not_closed"),
    (
        "polygons",
        [[[30.6, 121.0], [30.7, 121.1], [30.6, 121.1], [30.7, 121.0], [30.6, 121.0]]],
        "polygons[0]",
        "invalid_polygon",
    ),
    ("polygons", [[[95, 121.0], [30.6, 121.1], [30.7, 121.1], [95, 121.0]]], "polygons[0][0]", "range"),
    ("polygons", [[["a", 1], [30.6, 121.1], [30.7, 121.1], ["a", 1]]], "polygons[0][0]", "type"),
    ("circles", [{"lat": 30.6, "lon": 121.0, "radius_km": -1}], "circles[0].radius_km", "range"),
    ("circles", [{"lat": 30.6, "lon": 121.0, "radius_km": 501}], "circles[0].radius_km", "range"),
    ("circles", ["x"], "circles[0]", "type"),
    # The same shapes as CAP 1.2 text (what the console's coordinates fields send): the same errors.
    ("polygons", ["30.6,121.0 30.6,121.1 30.7,121.1"], "polygons[0]", "points"),
    ("polygons", ["30.6,121.0 30.6,121.1 30.7,121.1 30.7,121.0"], "polygons[0]", "not_closed"),
    ("polygons", ["30.6,121.0 30.7,121.1 30.6,121.1 30.7,121.0 30.6,121.0"], "polygons[0]", "invalid_polygon"),
    ("polygons", ["95,121.0 30.6,121.1 30.7,121.1 95,121.0"], "polygons[0][0]", "range"),
    ("polygons", ["30.6,121.0 30.6,east 30.7,121.1 30.6,121.0"], "polygons[0][1]", "type"),
    ("polygons", ["30.6 121.0 30.6 121.1 30.7 121.1 30.6 121.0"], "polygons[0][0]", "type"),
    ("circles", ["30.6,121.0 0"], "circles[0].radius_km", "range"),
    ("circles", ["30.6,121.0 -2"], "circles[0].radius_km", "range"),
    ("circles", ["30.6,121.0 two"], "circles[0].radius_km", "range"),
    ("circles", ["30.6,121.0"], "circles[0]", "type"),
    ("circles", ["30.6,east 2"], "circles[0]", "type"),
    ("circles", ["30.6,181 2"], "circles[0]", "range"),
    ("circles", ["30.6,121.0 2" + " " * 12_000], "circles[0]", "too_long"),
    ("polygons", ["30.6,121.0 " * 1100], "polygons[0]", "too_long"),
]


@pytest.mark.parametrize(("path", "value", "field", "code"), CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
async def test_bad_field_is_named_and_nothing_stored(client, services, staff, clock, path, value, field, code):
    body = _set(warning_body(clock), path, value)
    resp = await client.post("/api/v1/warnings", json=body, headers=staff["drafter"])
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "validation_failed"
    assert {"field": field, "code": code} in [{"field": f["field"], "code": f["code"]} for f in error["fields"]]
    assert all(f["message"] for f in error["fields"])
    listing = await (await client.get("/api/v1/warnings", headers=staff["drafter"])).json()
    assert listing["warnings"] == []


async def test_shapes_in_cap_text_are_the_same_shapes(client, services, staff, clock):
    """A polygon or circle as CAP text is stored as the same numbers as its JSON; a drafter's
    full-width commas, spaces after commas and "km" are read too."""
    ring = [[30.6, 121.0], [30.6, 121.1], [30.7, 121.1], [30.6, 121.0]]
    typed = {
        "polygons": ["30.6，121.0 30.6, 121.1\u300030.7,121.1 30.6,121.0"],
        "circles": ["30.65,121.05 3.25 km", "30.61,121.02 0.5"],
    }
    resp = await client.post("/api/v1/warnings", json={**warning_body(clock), **typed}, headers=staff["drafter"])
    assert resp.status == 201, await resp.text()
    message = await services.warnings.get((await resp.json())["id"])
    assert message.content.polygons == [[tuple(p) for p in ring]]
    circles = [(c.lat, c.lon, c.radius_km) for c in message.content.circles]
    assert circles == [(30.65, 121.05, 3.25), (30.61, 121.02, 0.5)]


def test_cap_text_is_written_as_it_is_read():
    from publisher.cap_shapes import cap_circle, cap_polygon, circle_from_text, polygon_from_text
    from publisher.model import Circle

    ring = [(31.2, 121.4), (31.2, 121.5), (31.3, 121.5), (31.2, 121.4)]
    assert cap_polygon(ring) == "31.2,121.4 31.2,121.5 31.3,121.5 31.2,121.4"
    assert [tuple(p) for p in polygon_from_text(cap_polygon(ring))] == ring
    assert cap_circle(Circle(31.23, 121.47, 2.0)) == "31.23,121.47 2.0"
    assert circle_from_text("31.23,121.47 2.0") == {"lat": 31.23, "lon": 121.47, "radius_km": 2.0}
    assert polygon_from_text("1e3,2 nan,1 3") == [["1e3", 2.0], ["nan", 1.0], "3"]  # not decimal degrees: left as typed
    assert circle_from_text("31.23,121.47 2 3") is None


async def test_non_standard_json_numbers_are_refused_with_their_position(client, services, staff, clock):
    body = json.dumps(_set(warning_body(clock), "circles", [{"lat": 30.6, "lon": 121.0, "radius_km": float("nan")}]))
    assert "NaN" in body  # Python writes it; JSON (RFC 8259) has no such number
    resp = await client.post(
        "/api/v1/warnings", data=body, headers={**staff["drafter"], "Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert "column" in (await resp.json())["error"]["message"]
    listing = await (await client.get("/api/v1/warnings", headers=staff["drafter"])).json()
    assert listing["warnings"] == []


async def test_time_order(client, services, staff, clock):
    body = warning_body(clock, effective=(clock.now + timedelta(hours=8)).isoformat())
    resp = await client.post("/api/v1/warnings", json=body, headers=staff["drafter"])
    assert (await resp.json())["error"]["fields"][0]["code"] == "before_effective"
    body = warning_body(clock, onset=(clock.now + timedelta(hours=7)).isoformat())
    resp = await client.post("/api/v1/warnings", json=body, headers=staff["drafter"])
    assert (await resp.json())["error"]["fields"][0]["code"] == "after_expires"
    body = warning_body(clock, expires=(clock.now + timedelta(days=40)).isoformat())
    resp = await client.post("/api/v1/warnings", json=body, headers=staff["drafter"])
    assert (await resp.json())["error"]["fields"][0]["code"] == "too_far"


async def test_several_errors_are_reported_together(client, services, staff, clock):
    body = {"grade": "pink", "info": {}}
    resp = await client.post("/api/v1/warnings", json=body, headers=staff["drafter"])
    fields = {f["field"] for f in (await resp.json())["error"]["fields"]}
    assert {"grade", "event", "expires", "areas", "info.zh-CN", "info.en"} <= fields


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"grade=red", "application/x-www-form-urlencoded"),
    ],
)
async def test_malformed_bodies(client, services, staff, raw, content_type):
    resp = await client.post("/api/v1/warnings", data=raw, headers={**staff["drafter"], "Content-Type": content_type})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_request"


async def test_body_must_be_an_object(client, services, staff):
    resp = await client.post("/api/v1/warnings", json=[1, 2], headers=staff["drafter"])
    assert resp.status == 422
    assert (await resp.json())["error"]["fields"][0]["code"] == "type"


async def test_oversized_body_is_refused(client, services, staff):
    resp = await client.post(
        "/api/v1/warnings",
        data=io.BytesIO(b"{" + b" " * (2 * 1024 * 1024) + b"}"),
        headers={**staff["drafter"], "Content-Type": "application/json"},
    )
    assert resp.status == 413


async def test_errors_in_the_request_language(client, services, staff, clock):
    body = warning_body(clock, grade="purple")
    zh = await client.post(
        "/api/v1/warnings", json=body, headers={**staff["drafter"], "Accept-Language": "zh-CN,zh;q=0.9"}
    )
    en = await client.post("/api/v1/warnings?lang=en", json=body, headers=staff["drafter"])
    zh_error, en_error = (await zh.json())["error"], (await en.json())["error"]
    assert en_error["fields"][0]["message"].startswith("Must be one of")
    assert zh_error["fields"][0]["message"] != en_error["fields"][0]["message"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh_error["fields"][0]["message"])


@pytest.mark.parametrize(
    ("ring", "english"),
    [
        ("30.6,121.0 30.6,121.1 30.6,121.1 30.6,121.0", "at least 3 different corners"),
        ("30.6,121.0 30.6,121.2 30.8,121.2 30.6,121.1 30.8,121.0 30.6,121.0", "edges cross near 30.6,121.1"),
    ],
)
async def test_a_bad_polygon_is_explained_in_the_readers_words(client, services, staff, clock, ring, english):
    """shapely's reasons ("Too few points in geometry component[…]") never reach a reader."""
    body = {**warning_body(clock), "polygons": [ring]}
    messages = {}
    for lang in ("en", "zh-CN"):
        resp = await client.post(f"/api/v1/warnings?lang={lang}", json=body, headers=staff["drafter"])
        assert resp.status == 422
        [error] = [f for f in (await resp.json())["error"]["fields"] if f["field"] == "polygons[0]"]
        messages[lang] = error["message"]
    assert english in messages["en"] and "geometry" not in messages["en"]
    assert re.search(r"[\u4e00-\u9fff]", messages["zh-CN"]) and not re.search(r"[A-Za-z]{3,}", messages["zh-CN"])
