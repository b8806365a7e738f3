"""The pages people read, through the real app (issue 13): language kept from ?lang=, cards in
their own language, times in the city's zone, reports placed where the device says, the audit log
in words, the public page's feeds, CAP view and favicon, the tracking-code form, and the demo
delivering to someone."""

from __future__ import annotations

import html as html_lib
import json
import re

from channels.outbox import read_outbox
from citizen_report.intake import load_report, submit_report
from citizen_report.model import ReportInput
from citizen_report.queue import drain as drain_reports
from publisher.dispatch.preview import preview
from tests.conftest import warning_body
from tests.delivery_helpers import drain as drain_dispatch
from tests.warncast.test_console import login
from warncast.demo import DEMO_SCREEN, DEMO_SMS_SUBSCRIBERS, DEMO_TELEGRAM_SUBSCRIBERS, load_demo

CJK = re.compile(r"[\u4e00-\u9fff]")
BINJIANG_POINT = {"lat": 30.666165, "lon": 121.062489}  # in community 990101001001 (Binjiang)
YUNLING = "990103"


async def published(services, clock, **overrides):
    """A warning published through the workflow (needs the `users` fixture): approved by an
    approver and a chief, enough for any grade."""
    drafter = await services.accounts.get_actor("drafter")
    message = await services.warnings.create(drafter, warning_body(clock, **overrides))
    await services.warnings.submit(drafter, message.id)
    message = await services.warnings.approve(await services.accounts.get_actor("approver"), message.id, "")
    if message.state != "published":
        message = await services.warnings.approve(await services.accounts.get_actor("chief"), message.id, "")
    return message


async def test_lang_parameter_is_kept_for_the_next_pages(client, services):
    english = {"Accept-Language": "en-GB,en;q=0.9"}
    first = await client.get("/report?lang=zh", headers=english)
    assert '<html lang="zh-CN">' in await first.text()
    assert first.cookies["wc_lang"].value == "zh_Hans"
    # The next click carries no ?lang=: the form and the public page stay Chinese.
    form = await (await client.get("/report?category=waterlogging", headers=english)).text()
    assert '<html lang="zh-CN">' in form and "提交上报" in form
    assert '<html lang="zh-CN">' in await (await client.get("/", headers=english)).text()
    # The language switch goes back to the page without its ?lang=, which would choose Chinese again.
    page = await (await client.get("/report?lang=zh&category=waterlogging", headers=english)).text()
    assert 'href="/lang/en?next=/report%3Fcategory%3Dwaterlogging"' in page
    # Machines are not given the cookie.
    api = await client.get("/api/v1/areas?lang=en")
    assert "wc_lang" not in api.cookies


async def test_each_card_is_labelled_in_its_own_language(client, services, users, clock):
    drafter = await services.accounts.get_actor("drafter")
    message = await services.warnings.create(drafter, warning_body(clock, grade="orange", event="typhoon"))
    await login(client, "chief", users["chief"])
    for console_lang in ("en", "zh"):
        html = await (await client.get(f"/console/warnings/{message.id}?lang={console_lang}")).text()
        zh_card = _card(html, "zh-CN")
        en_card = _card(html, "en")
        assert "橙色" in zh_card and "台风" in zh_card and "防御指南" in zh_card and "有效期至" in zh_card
        assert "What to do" not in zh_card and "Orange" not in zh_card and "Until" not in zh_card
        assert "Orange" in en_card and "Typhoon" in en_card and "What to do" in en_card and "Until" in en_card
        assert not CJK.search(en_card), en_card
        assert "<h1>" in html
    compose = await (await client.get("/console/compose?lang=en")).text()
    labels = {
        tag: {name: json.loads(html_lib.unescape(value)) for name, value in found}
        for tag in ("zh-CN", "en")
        for found in [re.findall(r'data-(grades|events)="([^"]*)"', compose.split(f'data-preview-lang="{tag}"')[1])[:2]]
    }
    assert labels["zh-CN"]["grades"]["orange"] == "橙色 (II)" and labels["zh-CN"]["events"]["typhoon"] == "台风"
    assert labels["en"]["grades"]["orange"] == "Orange (II)" and labels["en"]["events"]["typhoon"] == "Typhoon"
    assert "Texts in Chinese" in compose
    assert "Texts in zh-CN" not in compose


def _card(html: str, tag: str) -> str:
    found = re.search(rf'<article class="warning-card[^>]*lang="{tag}">(.*?)</article>', html, re.S)
    assert found, tag
    return found.group(1)


async def test_times_are_the_city_s_24_hour_clock_with_an_unambiguous_date(client, services, users, clock):
    message = await published(services, clock, grade="red")
    html = await (await client.get(f"/warnings/{message.id}?lang=en")).text()
    expires = message.content.expires.astimezone(services.settings.tz)
    # "Dec 2, 2026, 18:29 (UTC+8)": month in words, 24 h, the zone named.
    shown = f"{expires:%b} {expires.day}, {expires.year}, {expires:%H:%M} (UTC+8)"
    assert shown in html, shown
    assert not re.search(r"\b\d{1,2}/\d{1,2}/\d{2}\b|\b[AP]M\b", html)
    zh = await (await client.get(f"/warnings/{message.id}?lang=zh")).text()
    assert f"{expires.year}年{expires.month}月{expires.day}日 {expires:%H:%M} (UTC+8)" in zh
    texts = (await preview(services.dispatch, message))["channels"]["sms"]["texts"]
    assert f"Until {expires:%b} {expires.day}, {expires:%H:%M}" in texts["en"]["text"]
    assert f"有效期至{expires.month}月{expires.day}日 {expires:%H:%M}" in texts["zh-CN"]["text"]


async def test_the_device_s_point_wins_over_an_area_picked_in_the_list(services):
    data = ReportInput(
        category="waterlogging", description="Underpass flooded", area=YUNLING, channel="web", **BINJIANG_POINT
    )
    submitted = await submit_report(services.reports, data)
    report = await load_report(services.reports, submitted.report.id)
    assert report and report.area == "990101001001" and report.location_source == "device"


async def test_one_spot_reported_with_and_without_gps_is_one_incident(client, services, staff):
    for body in (
        {"area": "990101001001"},  # the community only (no GPS): placed at its centre
        BINJIANG_POINT,  # a GPS point in that community, some hundred metres away
        {"area": "990101001001"},
    ):
        data = ReportInput(category="waterlogging", description="Water knee deep here", channel="api", **body)
        await submit_report(services.reports, data)
    assert await drain_reports(services.reports) == 3
    incidents = (await (await client.get("/api/v1/incidents", headers=staff["triage"])).json())["incidents"]
    assert [(i["category"], i["count"]) for i in incidents] == [("waterlogging", 3)]
    # The incident moved to the first real point it was given.
    assert (incidents[0]["lat"], incidents[0]["lon"]) == (BINJIANG_POINT["lat"], BINJIANG_POINT["lon"])


async def test_a_contact_needs_consent_on_the_form(client, services):
    form = {
        "category": "waterlogging",
        "description": "Water knee deep here",
        "area": "990101001",
        "reply_channel": "sms",
        "phone": "+8613800138000",
    }
    resp = await client.post("/report?lang=en", data=form, allow_redirects=False)
    assert resp.status == 422
    assert "Agree that we may keep your contact details" in await resp.text()
    assert await drain_reports(services.reports) == 0
    resp = await client.post("/report?lang=en", data={**form, "consent": "1"}, allow_redirects=False)
    assert resp.status == 303


async def test_audit_log_reads_in_words(client, services, users, clock):
    await services.audit.append("admin", "screen.create", "plaza", name="澜江广场", languages=["zh-CN", "en"])
    await login(client, "admin", users["admin"])
    zh = await (await client.get("/console/audit?lang=zh")).text()
    assert "登记显示屏" in zh and "澜江广场" in zh and "zh-CN, en" in zh
    assert "\\u" not in zh
    en = await (await client.get("/console/audit?lang=en")).text()
    assert "Screen registered" in en


async def test_public_page_offers_feeds_cap_view_report_and_no_timed_refresh(client, services, users, clock):
    message = await published(services, clock, grade="red")
    html = await (await client.get("/?lang=en")).text()
    assert 'http-equiv="refresh"' not in html
    assert '<link rel="alternate" type="application/atom+xml"' in html
    assert 'href="/feeds/warnings.rss?lang=en"' in html and 'href="/report"' in html
    assert f'href="/cap/{message.id}.html"' in html and "style=" not in html.split("<svg", 1)[1].split(">", 1)[0]
    cap = await client.get(f"/cap/{message.id}.html?lang=zh")
    assert cap.status == 200 and cap.content_type == "text/html"
    text = await cap.text()
    assert "信息性质" in text and "&lt;alert xmlns=" in text and f'href="/cap/{message.id}.xml"' in text
    icon = await client.get("/favicon.ico")
    assert icon.status == 200 and icon.content_type == "image/svg+xml"


async def test_live_stream_tells_the_page_what_is_published(aiohttp_client, settings, clock):
    from warncast.app_keys import SERVICES
    from warncast.web.app import create_app

    # The stream follows the warnings stream: the app's follower loop runs with the scheduler.
    client = await aiohttp_client(create_app(settings.with_(run_scheduler=True), clock=clock))
    services = client.app[SERVICES]
    await load_demo(services)
    resp = await client.get("/live")
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    first = (await resp.content.readuntil(b"\n\n")) + (await resp.content.readuntil(b"\n\n"))
    assert b"event: version" in first
    drafter, approver = await services.accounts.get_actor("drafter"), await services.accounts.get_actor("approver")
    message = await services.warnings.create(drafter, warning_body(clock, grade="blue"))
    await services.warnings.submit(drafter, message.id)
    await services.warnings.approve(approver, message.id, "")
    nxt = await resp.content.readuntil(b"\n\n")
    assert nxt.startswith(b"event: version\ndata: ") and nxt not in first
    resp.close()


async def test_tracking_code_form(client, services):
    data = ReportInput(category="waterlogging", description="Water knee deep here", area="990101001", channel="web")
    code = (await submit_report(services.reports, data)).report.tracking_code
    form = await client.get("/report/track?lang=en")
    assert form.status == 200 and 'name="code"' in await form.text()
    found = await client.get(f"/report/track?code= {code} &lang=en", allow_redirects=False)
    assert found.status == 303 and found.headers["Location"] == f"/report/{code}"
    missing = await client.get("/report/track?code=NOPE&lang=en")
    assert missing.status == 404 and "No report with this tracking code" in await missing.text()
    assert 'href="/report/track"' in await (await client.get("/report?lang=en")).text()


async def test_sms_report_number_is_a_setting(aiohttp_client, settings, clock):
    from warncast.web.app import create_app

    client = await aiohttp_client(create_app(settings.with_(sms_number="+86 10 12379"), clock=clock))
    assert "+86 10 12379" in await (await client.get("/report?lang=en")).text()


async def test_the_demo_delivers_to_its_residents_and_has_a_screen(aiohttp_client, settings, clock):
    from warncast.app_keys import SERVICES
    from warncast.web.app import create_app

    client = await aiohttp_client(create_app(settings.with_(sms_rate=10_000.0, telegram_rate=10_000.0), clock=clock))
    services = client.app[SERVICES]
    notes = await load_demo(services)
    assert any(f"{DEMO_SMS_SUBSCRIBERS} demo residents" in n for n in notes)
    demo = (await services.warnings.active())[0]
    reach = {name: ch["reach"] for name, ch in (await preview(services.dispatch, demo))["channels"].items()}
    assert reach["sms"] > 0 and reach["telegram"] > 0
    await drain_dispatch(services)
    sms, telegram = await read_outbox(services.redis, "sms", 1000), await read_outbox(services.redis, "telegram", 1000)
    assert len(sms) == reach["sms"] and len(telegram) == reach["telegram"]
    assert 0 < len(telegram) <= DEMO_TELEGRAM_SUBSCRIBERS
    screen = await client.get(f"/screens/{DEMO_SCREEN}.json")
    assert screen.status == 200 and (await screen.json())["warnings"][0]["id"] == demo.id
    again = await load_demo(services)  # idempotent: no second set of residents
    assert len(await read_outbox(services.redis, "sms", 1000)) == len(sms) and again
