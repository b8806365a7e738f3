"""Citizen reports: every intake path into the monitoring queue, validation, idempotency, photos,
rate limits and the tracking page."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import re
import struct
import zlib
from typing import Any

import pytest
from aiohttp import FormData
from PIL import Image

from citizen_report.acknowledgements import receipt
from citizen_report.chat import parse_sms_report
from citizen_report.intake import submit_report
from citizen_report.model import Report, ReportInput
from citizen_report.notify import render_notification
from citizen_report.queue import drain, items
from foundation.store import keys

INSIDE = {"lat": 30.666165, "lon": 121.062489}  # in community 990101001001 of the demo city
BODY = {"category": "waterlogging", "description": "Underpass flooded, cars stuck", **INSIDE}


def gps_jpeg(lat: float = 30.666, lon: float = 121.0625, size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG carrying GPS, camera and author EXIF, like one straight from a phone."""
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0x013B] = "Jane Citizen"  # Artist

    def dms(value: float) -> tuple[float, float, float]:
        degrees = int(value)
        minutes = int((value - degrees) * 60)
        return (degrees, minutes, round(((value - degrees) * 60 - minutes) * 60, 4))

    exif.get_ifd(0x8825).update({1: "N", 2: dms(lat), 3: "E", 4: dms(lon)})
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, comment=b"secret comment")
    return out.getvalue()


async def queued(services: Any) -> list[dict[str, str]]:
    return await items(services.reports, limit=1000)


async def post_report(client: Any, body: dict[str, Any], key: str | None = None, lang: str = "en") -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return await client.post(f"/api/v1/reports?lang={lang}", json=body, headers=headers)


async def test_json_api_into_the_queue_and_tracking(client, services):
    resp = await post_report(client, {**BODY, "contact": {"phone": "+8613800138000"}, "consent": True}, key="k-1")
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    code = body["tracking_code"]
    assert re.fullmatch(r"[0-9A-Z]{16}", code)
    assert resp.headers["Location"] == f"/api/v1/reports/{code}"
    [item] = await queued(services)
    assert item["kind"] == "report" and item["ref"] == body["id"] and item["category"] == "waterlogging"
    # The status, by code, shows no personal data.
    status = await (await client.get(f"/api/v1/reports/{code}")).json()
    assert status["status"] == "received"
    assert "13800138000" not in json.dumps(status) and "Underpass" not in json.dumps(status)
    page = await (await client.get(f"/report/{code}?lang=en")).text()
    assert "Received" in page and "13800138000" not in page
    # The reporter is told on the channel they gave: SMS to their phone.
    [(_id, note)] = await services.redis.xrange(keys.REPORT_NOTIFICATIONS)
    assert note["channel"] == "sms" and note["address"] == "+8613800138000" and note["tracking_code"] == code
    assert code in note["text"] and note["locale"] == "en"


async def test_the_documented_example_body_is_accepted(client, services):
    """Shanghai's coordinates lie outside the demo city: accepted, routed to the default department."""
    body = {"category": "fire", "description": "Smoke from a shop", "lat": 31.23, "lon": 121.47}
    resp = await post_report(client, {**body, "contact": {"phone": "+8613900000000"}, "consent": True}, key="abc")
    assert resp.status == 201
    assert (await resp.json())["area"] is None


async def test_idempotent_retries(client, services):
    first = await post_report(client, BODY, key="same")
    again = await post_report(client, BODY, key="same")
    assert first.status == 201 and again.status == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await first.json())["tracking_code"] == (await again.json())["tracking_code"]
    assert len(await queued(services)) == 1
    other = await post_report(client, {**BODY, "description": "Something else entirely"}, key="same")
    assert other.status == 409
    assert len(await queued(services)) == 1
    # Without a key every post is a new report.
    await post_report(client, BODY)
    assert len(await queued(services)) == 2


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"category": None}, "category", "required"),
        ({"category": "volcano"}, "category", "unknown"),
        ({"category": 5}, "category", "required"),
        ({"description": "abc"}, "description", "too_short"),
        ({"description": "x" * 2001}, "description", "too_long"),
        ({"description": ["list"]}, "description", "type"),
        ({"lat": 91}, "lat", "range"),
        ({"lon": "east"}, "lon", "range"),
        ({"lat": True}, "lat", "range"),
        ({"lat": None}, "lat", "required"),
        ({"lat": None, "lon": None}, "location", "required"),
        ({"area": "123"}, "area", "unknown"),
        ({"address": "a" * 201}, "address", "too_long"),
        ({"contact": {"phone": "12345"}, "consent": True}, "contact.phone", "format"),
        ({"contact": {"email": "not-mail"}}, "contact.email", "format"),
        ({"reply_channel": "pigeon"}, "reply_channel", "unknown"),
        ({"reply_channel": "sms"}, "contact.phone", "required"),
        ({"reply_channel": "telegram"}, "reply_channel", "unavailable"),
        ({"colour": "red"}, "colour", "unknown"),
        ({"contact": "+86138"}, "contact", "type"),
    ],
)
async def test_bad_input_on_every_field(client, services, change, field, code):
    body = {**BODY, **change}
    body = {k: v for k, v in body.items() if not (k in ("lat", "lon") and v is None and change.get(k, 0) is None)}
    if change.get("lat", 0) is None and "lon" not in change:
        body["lon"] = BODY["lon"]
    resp = await post_report(client, body)
    assert resp.status == 422, await resp.text()
    fields = {(f["field"], f["code"]): f["message"] for f in (await resp.json())["error"]["fields"]}
    assert (field, code) in fields, fields
    assert await queued(services) == []
    assert await services.redis.get(keys.REPORT_SEQUENCE) is None


async def test_errors_in_the_reporters_language(client, services):
    resp = await post_report(client, {**BODY, "category": "volcano"}, lang="zh")
    [problem] = (await resp.json())["error"]["fields"]
    assert problem["message"] != "Choose one of the listed categories."
    assert any("\u4e00" <= ch <= "\u9fff" for ch in problem["message"]), "the message is in Chinese"
    assert problem["message"] in await resp.text(), "readable in the raw body, not \\u escapes"
    en = await post_report(client, {**BODY, "category": "volcano"}, lang="en")
    assert (await en.json())["error"]["fields"][0]["message"] == "Choose one of the listed categories."


async def test_multipart_api_with_photo_strips_metadata(client, services):
    form = FormData()
    for name, value in {"category": "road_damage", "description": "Open manhole on the pavement"}.items():
        form.add_field(name, value)
    form.add_field("photo_location", "true")
    form.add_field("photos", gps_jpeg(), filename="IMG_0001.jpg", content_type="image/jpeg")
    resp = await client.post("/api/v1/reports", data=form)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    report = json.loads(await services.redis.get(keys.report(body["id"])))
    # The location came from the photo's GPS tag, because the reporter allowed it.
    assert report["location_source"] == "photo"
    assert report["lat"] == pytest.approx(30.666, abs=1e-3) and report["lon"] == pytest.approx(121.0625, abs=1e-3)
    assert report["area"] == "990101001001"
    [photo_id] = report["photos"]
    import base64

    stored = base64.b64decode(await services.redis.get(keys.report_photo(photo_id)))
    assert b"PhoneMaker" not in stored and b"Jane Citizen" not in stored and b"secret comment" not in stored
    clean = Image.open(io.BytesIO(stored))
    assert clean.format == "JPEG" and clean.size == (64, 48)
    assert len(clean.getexif()) == 0
    assert not {"exif", "icc_profile", "comment", "xmp"} & set(clean.info)
    assert len(await queued(services)) == 1


async def test_photo_location_is_not_used_unless_allowed(client, services):
    form = FormData()
    form.add_field("category", "road_damage")
    form.add_field("description", "Open manhole on the pavement")
    form.add_field("photos", gps_jpeg(), filename="a.jpg", content_type="image/jpeg")
    resp = await client.post("/api/v1/reports?lang=en", data=form)
    assert resp.status == 422
    assert (await resp.json())["error"]["fields"][0]["field"] == "location"


async def test_photo_limits(client, services):
    form = FormData()
    for name, value in BODY.items():
        form.add_field(name, str(value))
    form.add_field("photos", b"GIF89a not really", filename="x.gif", content_type="image/gif")
    resp = await client.post("/api/v1/reports?lang=en", data=form)
    assert resp.status == 422
    assert (await resp.json())["error"]["fields"][0] == {
        "field": "photos[0]",
        "code": "not_an_image",
        "message": "This file is not a JPEG, PNG, WebP or GIF image.",
    }
    form = FormData()
    for name, value in BODY.items():
        form.add_field(name, str(value))
    for i in range(4):
        form.add_field("photos", gps_jpeg(), filename=f"{i}.jpg", content_type="image/jpeg")
    resp = await client.post("/api/v1/reports?lang=en", data=form)
    assert (await resp.json())["error"]["fields"][0]["code"] == "too_many"
    services.reports.config = services.reports.config.__class__(max_photo_bytes=1000)
    form = FormData()
    for name, value in BODY.items():
        form.add_field(name, str(value))
    form.add_field("photos", gps_jpeg(size=(400, 400)) + b"\0" * 2000, filename="big.jpg", content_type="image/jpeg")
    resp = await client.post("/api/v1/reports?lang=en", data=form)
    assert resp.status == 422 and (await resp.json())["error"]["fields"][0]["code"] == "too_large"
    assert await queued(services) == []


async def test_rate_limits_per_ip_and_per_phone(client, services):
    services.reports.config = services.reports.config.__class__(per_ip=(4, 600), per_sender=(2, 3600))
    for i in range(2):
        resp = await post_report(
            client, {**BODY, "contact": {"phone": "+8613800000001"}, "consent": True, "description": f"flood {i}!"}
        )
        assert resp.status == 201
    resp = await post_report(client, {**BODY, "contact": {"phone": "+8613800000001"}, "consent": True})
    assert resp.status == 429
    assert "Too many reports" in (await resp.json())["error"]["message"]
    assert (await post_report(client, BODY)).status == 201  # fourth attempt from this IP, no phone
    assert (await post_report(client, BODY)).status == 429  # fifth attempt from this IP
    assert len(await queued(services)) == 3
    # An SMS sender is limited by phone, whatever IP the webhook came from.
    for expected in (True, True, False):
        data = parse_sms_report("上报 井盖丢失 road", services.registry, phone="+8613700000009")
        try:
            await submit_report(services.reports, data)
            assert expected
        except Exception as exc:  # noqa: BLE001
            assert not expected and "TooManyRequests" in type(exc).__name__


async def test_honeypot(client, services):
    resp = await client.post("/report?lang=en", data={**{k: str(v) for k, v in BODY.items()}, "website": "http://spam"})
    assert resp.status == 422
    assert "Leave this field empty." in await resp.text()
    assert await queued(services) == []


async def test_oversized_body_is_refused(client, services):
    services.reports.config = services.reports.config.__class__(max_photo_bytes=100_000)
    form = FormData()
    form.add_field("photos", io.BytesIO(b"x" * 1_000_000), filename="a.jpg", content_type="image/jpeg")
    resp = await client.post("/api/v1/reports", data=form)
    assert resp.status == 413


async def test_web_form_without_javascript(client, services):
    choose = await (await client.get("/report?lang=en")).text()
    assert 'href="/report?category=waterlogging"' in choose
    form_page = await (await client.get("/report?category=waterlogging&lang=en")).text()
    submission = re.search(r'name="submission" value="([^"]+)"', form_page).group(1)
    form = FormData()
    fields = {"category": "waterlogging", "submission": submission, "area": "990101001"}
    fields |= {"description": "<script>alert(1)</script> water knee deep", "consent": "1", "reply_channel": "web"}
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("photos", b"", filename="", content_type="application/octet-stream")  # no photo chosen
    resp = await client.post("/report?lang=en", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    code = resp.headers["Location"].split("/report/")[1].split("?")[0]
    [item] = await queued(services)
    assert item["area"] == "990101001"
    # Pressing "send" twice (same submission id) files one report.
    form2 = FormData()
    for name, value in fields.items():
        form2.add_field(name, value)
    again = await client.post("/report?lang=en", data=form2, allow_redirects=False)
    assert again.headers["Location"].startswith(f"/report/{code}")
    assert len(await queued(services)) == 1


async def test_web_form_keeps_values_and_names_each_error(client, services):
    data = {"category": "waterlogging", "description": "ok?", "phone": "555", "reply_channel": "sms"}
    resp = await client.post("/report?lang=en", data=data)
    assert resp.status == 422
    page = await resp.text()
    assert "Describe what you see in at least 5 characters." in page
    assert "Give the phone number with its country code" in page
    assert "Say where it is" in page
    assert 'value="555"' in page


async def test_life_safety_category_first_says_call(client, services):
    page = await (await client.get("/report?category=gas_leak&lang=en")).text()
    assert "Call 119 now" in page and 'href="tel:119"' in page
    assert 'name="description"' not in page
    form = await (await client.get("/report?category=gas_leak&safe=1&lang=en")).text()
    assert 'name="description"' in form


async def test_sms_and_telegram_entry_points_into_the_queue(client, services):
    sms = parse_sms_report(
        "REPORT fallen tree blocking road in Jiangwan Subdistrict", services.registry, phone="+8613811112222"
    )
    assert sms.category == "fallen_tree" and sms.area == "990101001"
    done = await submit_report(services.reports, sms, idempotency_key="SM123")
    replay = await submit_report(services.reports, sms, idempotency_key="SM123")
    assert replay.replayed and replay.report.id == done.report.id
    assert done.report.reply_channel == "sms" and done.report.reply_address == "+8613811112222"
    telegram = ReportInput(
        category="fire",
        description="smoke from the third floor",
        **INSIDE,
        channel="telegram",
        address_for_replies="987654321",
        locale="en",
    )
    sent = await submit_report(services.reports, telegram, idempotency_key="update-77")
    assert sent.report.reply_channel == "telegram" and sent.report.life_safety
    kinds = [(i["kind"], i["lane"]) for i in await queued(services)]
    assert kinds == [("report", "normal"), ("report", "priority")]
    notes = [n for _id, n in await services.redis.xrange(keys.REPORT_NOTIFICATIONS)]
    assert [(n["channel"], n["address"]) for n in notes] == [("sms", "+8613811112222"), ("telegram", "987654321")]
    assert "call 110, 119 or 120" in notes[1]["text"]
    await drain(services.reports)


async def test_intake_writes_everything_in_one_step(client, services):
    """The id comes from the intake script: the stored record, the indexes, the queue item and the
    idempotency key all carry it, and only a client's key is remembered (for the configured time)."""
    keyed = await submit_report(services.reports, ReportInput(**BODY, channel="api"), idempotency_key="one-step")
    plain = await submit_report(services.reports, ReportInput(**BODY, channel="api"))
    assert int(plain.report.id) == int(keyed.report.id) + 1
    for done in (keyed, plain):
        stored = json.loads(await services.redis.get(keys.report(done.report.id)))
        assert stored == done.report.as_record()
        assert await services.redis.hget(keys.REPORTS_BY_TRACKING, done.report.tracking_code) == done.report.id
        assert await services.redis.zscore(keys.REPORTS_INDEX, done.report.id) is not None
    assert [i["ref"] for i in await queued(services)] == [keyed.report.id, plain.report.id]
    remembered = [k async for k in services.redis.scan_iter(keys.report_idempotency("*"))]
    assert len(remembered) == 1
    hours = services.reports.config.idempotency_hours
    assert hours * 3600 - 5 <= await services.redis.ttl(remembered[0]) <= hours * 3600


async def test_concurrent_retries_make_one_report(client, services):
    """Retries racing each other (a client that times out and resends) still make one report."""
    data = ReportInput(**BODY, channel="api", client="192.0.2.7")
    results = await asyncio.gather(*(submit_report(services.reports, data, idempotency_key="race") for _ in range(8)))
    assert len({r.report.tracking_code for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False] + [True] * 7
    assert len(await queued(services)) == 1
    assert results[0].report.reply_channel == "web"
    assert await services.redis.xlen(keys.REPORT_NOTIFICATIONS) == 0, "a web reporter reads the tracking page"


def _variants(report: Report) -> list[Report]:
    """The report changed in one field at a time, every field of a Report."""
    changes: dict[str, list[Any]] = {
        "id": ["77"],
        "tracking_code": ["ABCDEFGHJKMNPQRS"],
        "category": ["fire"],
        "description": ["Something else, <b>bold</b> and 100%"],
        "lat": [None, 31.0],
        "lon": [None, 121.5],
        "area": [None, "990102"],
        "address": ["1 Main Street"],
        "location_source": ["address"],
        "photos": [["p1"]],
        "channel": ["sms", "telegram"],
        "reply_channel": ["sms", "telegram", "web"],
        "reply_address": ["+8613800000000", ""],
        "contact": [{"phone": "+8613800000000"}],
        "locale": ["en", "zh_Hans", "fr"],
        "life_safety": [True, False],
        "created": ["2030-01-01T00:00:00+08:00"],
        "updated": ["2030-01-01T00:00:00+08:00"],
        "status": ["verified", "rejected"],
        "status_note": ["Checked on site"],
        "incident": ["i-1"],
        "department": ["fire-brigade"],
        "history": [[]],
    }
    assert set(changes) == {f.name for f in dataclasses.fields(Report)}, "vary the new field here"
    return [dataclasses.replace(report, **{name: value}) for name, values in changes.items() for value in values]


async def test_receipt_is_the_rendered_notification(client, services):
    """The memoised receipt says exactly what rendering the notification template says."""
    done = await submit_report(
        services.reports, ReportInput(**BODY, channel="api", phone="+8613800138000", consent=True)
    )
    desk, url = services.reports, services.settings.public_url
    for report in _variants(done.report):
        for life_safety in (False, True):
            variant = dataclasses.replace(report, life_safety=life_safety)
            expected = render_notification(desk.text_env, services.catalogs, variant, url)
            assert receipt(desk.text_env, services.catalogs, variant, url) == expected, variant
    [(_id, stored)] = await services.redis.xrange(keys.REPORT_NOTIFICATIONS)
    assert stored == render_notification(desk.text_env, services.catalogs, done.report, url)


@pytest.mark.parametrize("life_safety", [False, True])
async def test_every_line_of_a_reporters_message_stands_apart(client, services, life_safety):
    """The tracking code's sentence, the danger line and the status link are lines of their own
    (they ran together as "...TNV6X.Status: http...")."""
    done = await submit_report(
        services.reports, ReportInput(**BODY, channel="api", phone="+8613800138000", consent=True)
    )
    desk, url = services.reports, services.settings.public_url
    report = dataclasses.replace(done.report, life_safety=life_safety)
    for locale in ("en", "zh_Hans"):
        text = render_notification(desk.text_env, services.catalogs, dataclasses.replace(report, locale=locale), url)
        lines = text["text"].split("\n")
        assert lines[0].endswith((f"{report.tracking_code}.", f"{report.tracking_code}。")), lines
        assert lines[-1].endswith(f"{url}/report/{report.tracking_code}") and len(lines) == 2 + life_safety, lines


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` pixels: the bomb's header, without its megabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


async def test_a_pixel_bomb_is_named_as_such(client, services):
    """A 20000 x 20000 PNG is refused for its pixels, not as "not an image"."""
    form = FormData()
    for name, value in BODY.items():
        form.add_field(name, str(value))
    form.add_field("photos", png_header(20000, 20000), filename="bomb.png", content_type="image/png")
    resp = await client.post("/api/v1/reports?lang=en", data=form)
    assert resp.status == 422
    assert (await resp.json())["error"]["fields"] == [
        {"field": "photos[0]", "code": "too_many_pixels", "message": "This image has too many pixels."}
    ]
    assert await queued(services) == []


async def test_reports_with_photos_are_limited_and_replayed_before_decoding(client, services):
    """With photos the sender is counted (and a replay answered) before the photos are decoded."""
    services.reports.config = services.reports.config.__class__(per_ip=(2, 600))

    def form() -> FormData:
        data = FormData()
        for name, value in BODY.items():
            data.add_field(name, str(value))
        data.add_field("photos", gps_jpeg(), filename="IMG_0002.jpg", content_type="image/jpeg")
        return data

    first = await client.post("/api/v1/reports", data=form(), headers={"Idempotency-Key": "photo-1"})
    assert first.status == 201, await first.text()
    again = await client.post("/api/v1/reports", data=form(), headers={"Idempotency-Key": "photo-1"})
    assert again.status == 200 and (await again.json())["id"] == (await first.json())["id"]
    assert (await client.post("/api/v1/reports", data=form())).status == 201  # the replay did not count
    assert (await client.post("/api/v1/reports", data=form())).status == 429
    assert len(await queued(services)) == 2


async def test_a_contact_through_the_api_needs_consent_and_changes_nothing_without(client, services):
    refused = await client.post("/api/v1/reports?lang=en", json={**BODY, "contact": {"phone": "+8613800138000"}})
    assert refused.status == 422
    assert [f["field"] for f in (await refused.json())["error"]["fields"]] == ["consent"]
    assert await services.redis.xlen(keys.MONITORING_QUEUE) == 0, "nothing was queued"
    with_consent = {**BODY, "contact": {"phone": "+8613800138000"}, "consent": True}
    agreed = await client.post("/api/v1/reports", json=with_consent)
    assert agreed.status == 201, await agreed.text()
    assert (await client.post("/api/v1/reports", json=BODY)).status == 201, "no contact: no consent needed"
