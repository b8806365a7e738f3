"""Citizen reports by SMS and Telegram, and the closed loop back to the reporter: the signed Twilio
webhook and the Telegram webhook into the monitoring queue, officers acting through the API, and the
notifier delivering each status change through the real twilio and python-telegram-bot clients
against their stand-ins (retries, dead letters, no duplicates)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import pytest

from citizen_report.intake import load_report
from citizen_report.model import ReportConfig
from citizen_report.queue import drain, items
from foundation.store import keys
from foundation.store.streams import ensure_group
from publisher.dispatch.notifications import Notifier
from tests.channels.test_telegram import callback_update, message_update, post_update
from tests.citizen_report.test_reports import INSIDE, gps_jpeg, post_report
from tests.delivery_helpers import FROM, signed_post, sms_settings
from tests.standins.telegram import TelegramStandin
from tests.standins.twilio import TwilioStandIn
from warncast.web.app import create_app

TOKEN, SECRET = "123:ABC", "s3cret"
PHONE, PHONE_ZH = "+8613800000001", "+8613800000002"
CHAT = 4242
CODE = re.compile(r"/report/([0-9A-Z]{16})")


@pytest.fixture
async def telegram_api():
    async with TelegramStandin(TOKEN, hang_seconds=5) as api:
        yield api


@pytest.fixture
def settings(settings: Any, twilio: TwilioStandIn, telegram_api: TelegramStandin) -> Any:
    return sms_settings(
        settings,
        twilio.url,
        telegram_bot_token=TOKEN,
        telegram_api_base=telegram_api.url,
        telegram_webhook_secret=SECRET,
        dispatch_reclaim_after=0.2,
    )


# -- helpers ---------------------------------------------------------------------------------------


async def text_in(client: Any, phone: str, body: str, sid: str) -> str:
    """An inbound SMS through the signed webhook; returns the TwiML reply's text."""
    resp = await signed_post(
        client,
        "/webhooks/twilio/sms",
        {"From": phone, "To": FROM, "Body": body, "MessageSid": sid, "AccountSid": "ACtest"},
    )
    assert resp.status == 200, await resp.text()
    twiml = await resp.text()
    assert twiml.startswith("<?xml") and "<Message>" in twiml
    return twiml


async def report_by_code(services: Any, code: str) -> Any:
    report_id = await services.redis.hget(keys.REPORTS_BY_TRACKING, code)
    assert report_id, f"no report {code}"
    return await load_report(services.reports, report_id)


async def report_count(services: Any) -> int:
    return int(await services.redis.zcard(keys.REPORTS_INDEX))


async def notes_for(services: Any, code: str) -> list[dict[str, str]]:
    return [f for _, f in await services.redis.xrange(keys.REPORT_NOTIFICATIONS) if f["tracking_code"] == code]


async def notify_all(services: Any, notifier: Notifier | None = None, rounds: int = 200) -> None:
    """Run the notifier in burst mode until nothing is new, pending or waiting for a retry."""
    notifier = notifier or Notifier(services, "test-notifier")
    await ensure_group(services.redis, keys.REPORT_NOTIFICATIONS, keys.REPORT_NOTIFY_GROUP)
    for _ in range(rounds):
        handled = await notifier.run_once()
        waiting = await services.redis.zcard(keys.REPORT_NOTIFY_RETRY)
        pending = (await services.redis.xpending(keys.REPORT_NOTIFICATIONS, keys.REPORT_NOTIFY_GROUP))["pending"]
        if not handled and not waiting and not pending:
            return
        if not handled:
            await asyncio.sleep(0.02)
    raise AssertionError("the notifier did not settle")


def to_chat(api: TelegramStandin, chat: int) -> list[str]:
    return [c.text for c in api.sent(chat)]


async def tg(client: Any, api: TelegramStandin, update: dict[str, Any]) -> Any:
    """Post one update; return the bot's one new message to the chat."""
    before = len(api.sent(CHAT))
    await post_update(client, update)
    new = api.sent(CHAT)[before:]
    assert len(new) == 1, [c.text for c in new]
    return new[0]


def photo_update(chat: int, sizes: list[tuple[str, int, int]], lang: str = "en") -> dict[str, Any]:
    update = message_update(chat, lang=lang)
    update["message"]["photo"] = [
        {"file_id": fid, "file_unique_id": f"u{fid}", "width": w, "height": h, "file_size": 1000} for fid, w, h in sizes
    ]
    return update


async def telegram_report(
    client: Any,
    services: Any,
    api: TelegramStandin,
    *,
    lang: str = "en",
    photo: bytes | None = None,
    other_client: Any = None,
) -> str:
    """The whole /report conversation; returns the tracking code from the bot's last reply."""
    reply = await tg(client, api, message_update(CHAT, "/report", lang=lang))
    assert ("waterlogging", "cat:waterlogging") in [(d[4:], d) for _, d in reply.buttons()]
    await post_update(client, callback_update(CHAT, "cat:waterlogging", lang=lang))
    where = api.sent(CHAT)[-1]
    assert where.reply_markup["keyboard"][0][0]["request_location"] is True
    reply = await tg(client, api, message_update(CHAT, lang=lang, location=(INSIDE["lat"], INSIDE["lon"])))
    assert reply.buttons()[0][1] == "skip"
    assert await services.redis.ttl(keys.telegram_flow(str(CHAT))) > 0, "the conversation lives in Redis"
    # The next step may reach another process (or this one restarted): the state is in Redis.
    client = other_client or client
    if photo is not None:
        api.add_file("small", b"not even an image")
        api.add_file("large", photo)
        reply = await tg(client, api, photo_update(CHAT, [("small", 90, 67), ("large", 1280, 960)], lang=lang))
        assert [c.params["file_path"] for c in api.calls if c.method == "download"] == ["photos/large"]
    else:
        await post_update(client, callback_update(CHAT, "skip", lang=lang))
    reply = await tg(client, api, message_update(CHAT, "Water knee deep in the underpass", lang=lang))
    [code] = CODE.findall(reply.text)
    assert await services.redis.exists(keys.telegram_flow(str(CHAT))) == 0
    return code


# -- SMS intake ------------------------------------------------------------------------------------


async def test_sms_report_into_the_queue_with_the_tracking_code_replied(client, services):
    reply = await text_in(client, PHONE, "REPORT Binjiang District underpass flooded, water knee deep", "SMr1")
    [code] = CODE.findall(reply)
    assert f"http://warncast.test/report/{code}" in reply
    report = await report_by_code(services, code)
    assert (report.channel, report.reply_channel, report.reply_address, report.locale) == ("sms", "sms", PHONE, "en")
    assert report.area == "990101" and report.category == "waterlogging" and report.lat is not None
    [item] = await items(services.reports)
    assert item["kind"] == "report" and item["ref"] == report.id
    received = "Lanjiang warnings: we received your hazard report. Tracking code %(code)s."
    assert services.catalogs.text("en", received, code=code) in reply

    # Twilio retries the webhook with the same MessageSid: the same answer, no second report.
    again = await text_in(client, PHONE, "REPORT Binjiang District underpass flooded, water knee deep", "SMr1")
    assert CODE.findall(again) == [code]
    assert await report_count(services) == 1 and len(await items(services.reports)) == 1

    # 上报, glued to its text, from another phone: a report in Chinese.
    reply = await text_in(client, PHONE_ZH, "上报滨江区江湾街道积水很深", "SMr2")
    [code_zh] = CODE.findall(reply)
    report = await report_by_code(services, code_zh)
    assert report.locale == "zh_Hans" and report.area == "990101001" and report.reply_address == PHONE_ZH
    note = (await notes_for(services, code_zh))[0]
    assert note["locale"] == "zh_Hans" and note["text"] in reply.replace("&amp;", "&")
    assert await report_count(services) == 2


async def test_bad_sms_reports_get_a_clear_reply_and_store_nothing(client, services):
    for body, sid in (("REPORT", "SMb1"), ("上报", "SMb2"), ("REPORT   ", "SMb3"), ("REPORT hi", "SMb4")):
        reply = await text_in(client, PHONE, body, sid)
        locale = "zh_Hans" if "上报" in body else "en"
        short = services.catalogs.text(locale, "Describe what you see in at least %(min)s characters.", min=5)
        assert short in reply, reply
        assert not CODE.findall(reply)
    assert await report_count(services) == 0 and await items(services.reports) == []
    unknown = await text_in(client, PHONE, "REPORTING nothing", "SMb6")  # not the keyword: the help text
    assert "JOIN" in unknown and await report_count(services) == 0


async def test_sms_reports_are_rate_limited_politely(client, services):
    services.reports.config = ReportConfig(per_sender=(2, 3600))
    for n in range(2):
        assert CODE.findall(await text_in(client, PHONE, f"REPORT fallen tree on Binjiang road {n}", f"SMl{n}"))
    reply = await text_in(client, PHONE, "REPORT fallen tree on Binjiang road 3", "SMl3")
    assert (
        services.catalogs.text(
            "en", "Too many reports from you in a short time. Try again in %(minutes)s minutes.", minutes=60
        )
        in reply
    )
    assert not CODE.findall(reply) and await report_count(services) == 2


# -- Telegram intake -------------------------------------------------------------------------------


async def test_telegram_report_conversation_with_a_photo(
    aiohttp_client, client, services, telegram_api, settings, clock
):
    second = await aiohttp_client(create_app(settings, clock=clock))  # another process, same Redis
    code = await telegram_report(client, services, telegram_api, photo=gps_jpeg(), other_client=second)
    report = await report_by_code(services, code)
    assert (report.channel, report.reply_channel, report.reply_address) == ("telegram", "telegram", str(CHAT))
    assert report.category == "waterlogging" and report.description == "Water knee deep in the underpass"
    assert (report.lat, report.lon) == (INSIDE["lat"], INSIDE["lon"]) and report.area == "990101001001"
    assert len(report.photos) == 1
    stored = base64.b64decode(await services.redis.get(keys.report_photo(report.photos[0])))
    assert stored.startswith(b"\xff\xd8") and b"Jane Citizen" not in stored and b"PhoneMaker" not in stored
    [item] = await items(services.reports)
    assert item["ref"] == report.id and item["category"] == "waterlogging"
    assert await services.subscribers.get("telegram", str(CHAT)) is None, "a report's location subscribes nobody"


async def test_telegram_report_in_chinese_cancel_and_bad_description(client, services, telegram_api):
    reply = await tg(client, telegram_api, message_update(CHAT, "/report", lang="zh-hans"))
    assert reply.text == services.catalogs.text("zh_Hans", "What kind of hazard are you reporting?")
    await post_update(client, callback_update(CHAT, "cat:fire", lang="zh-hans"))
    urgent = services.catalogs.text("zh_Hans", "If anyone is in danger, call %(number)s now.", number="119")
    assert urgent in telegram_api.sent(CHAT)[-1].text
    reply = await tg(client, telegram_api, message_update(CHAT, "/cancel", lang="zh-hans"))
    assert reply.text == services.catalogs.text("zh_Hans", "Report cancelled.")
    assert await services.redis.exists(keys.telegram_flow(str(CHAT))) == 0 and await report_count(services) == 0
    before = len(telegram_api.sent(CHAT))
    await post_update(client, callback_update(CHAT, "cat:fire", lang="zh-hans"))  # a button of the old report
    answer = [c for c in telegram_api.calls if c.method == "answerCallbackQuery"][-1]
    assert answer.params["text"] == services.catalogs.text("zh_Hans", "Send /report to start a new report.")
    assert len(telegram_api.sent(CHAT)) == before and await report_count(services) == 0

    await tg(client, telegram_api, message_update(CHAT, "/report"))
    await post_update(client, callback_update(CHAT, "cat:road_damage"))
    await tg(client, telegram_api, message_update(CHAT, "Jiangwan Subdistrict"))  # a typed place
    await post_update(client, callback_update(CHAT, "skip"))
    reply = await tg(client, telegram_api, message_update(CHAT, "hole"))  # too short: asked again
    assert reply.text == services.catalogs.text("en", "Describe what you see in at least %(min)s characters.", min=5)
    assert await report_count(services) == 0
    reply = await tg(client, telegram_api, message_update(CHAT, "Deep hole in the road surface"))
    report = await report_by_code(services, CODE.findall(reply.text)[0])
    assert report.area == "990101001" and report.category == "road_damage" and report.locale == "en"


# -- the closed loop -------------------------------------------------------------------------------


async def act(client: Any, staff: Any, incident: str, action: str, body: dict[str, Any] | None = None) -> None:
    resp = await client.post(f"/api/v1/incidents/{incident}/{action}", json=body or {}, headers=staff["triage"])
    assert resp.status == 200, await resp.text()


async def test_the_status_loop_reaches_the_reporter_by_sms_and_telegram(client, services, staff, twilio, telegram_api):
    sms_code = CODE.findall(await text_in(client, PHONE, "REPORT 990101001001 street flooded, cars stuck", "SMs1"))[0]
    tg_code = await telegram_report(client, services, telegram_api, lang="zh-hans")
    api = await post_report(
        client,
        {
            "category": "fallen_tree",
            "description": "Tree across the road",
            "contact": {"phone": PHONE_ZH},
            "consent": True,
            **INSIDE,
        },
    )
    api_code = (await api.json())["tracking_code"]
    twilio.messages.clear()
    telegram_api.reset()

    await notify_all(services)
    # "received" of SMS and Telegram reports was the reply in the conversation; the API report's goes by SMS.
    assert [m.to for m in twilio.messages] == [PHONE_ZH] and api_code in twilio.messages[0].body
    assert to_chat(telegram_api, CHAT) == []

    assert await drain(services.reports) == 3
    listed = await (await client.get("/api/v1/incidents", headers=staff["triage"])).json()
    for incident in listed["incidents"]:
        await act(client, staff, incident["id"], "verify")
        await act(client, staff, incident["id"], "assign", {"department": "fire_rescue"})
        await act(client, staff, incident["id"], "progress")
        await act(client, staff, incident["id"], "resolve", {"reason": "Pumped out"})
    await notify_all(services)

    loop = ["verified", "assigned", "in_progress", "resolved"]
    sms_notes = (await notes_for(services, sms_code))[1:]
    assert [n["status"] for n in sms_notes] == loop and {n["locale"] for n in sms_notes} == {"en"}
    assert [m.body for m in twilio.messages if m.to == PHONE] == [n["text"] for n in sms_notes]
    assert "Pumped out" in sms_notes[-1]["text"]
    assert services.catalogs.text("en", "Resolved") in sms_notes[-1]["text"]

    tg_notes = (await notes_for(services, tg_code))[1:]
    assert [n["status"] for n in tg_notes] == loop and {n["locale"] for n in tg_notes} == {"zh_Hans"}
    sent = telegram_api.sent(CHAT)
    assert [c.text for c in sent] == [n["text"] for n in tg_notes]
    assert {c.parse_mode for c in sent} == {None}, "plain text: an officer's note is never parsed as markup"
    assert services.catalogs.text("zh_Hans", "Resolved") in tg_notes[-1]["text"]
    for note in tg_notes:
        expected_status = services.catalogs.text(
            "zh_Hans",
            {
                "verified": "Verified",
                "assigned": "Assigned to a department",
                "in_progress": "Being handled",
                "resolved": "Resolved",
            }[note["status"]],
        )
        assert expected_status in note["text"] and tg_code in note["text"]

    # Running the consumer again (another process, or a restart) sends nothing twice.
    before = (len(twilio.messages), len(telegram_api.sent(CHAT)))
    await notify_all(services, Notifier(services, "second"))
    assert (len(twilio.messages), len(telegram_api.sent(CHAT))) == before


async def filed_by_sms(client: Any, services: Any, phone: str, sid: str) -> str:
    reply = await text_in(client, phone, "REPORT 990101001001 street flooded, cars stuck", sid)
    return CODE.findall(reply)[0]


async def resolve_all(client: Any, services: Any, staff: Any) -> None:
    await drain(services.reports)
    listed = await (await client.get("/api/v1/incidents", headers=staff["triage"])).json()
    for incident in listed["incidents"]:
        if incident["status"] not in ("resolved", "rejected"):
            await act(client, staff, incident["id"], "resolve", {"reason": "Done"})


async def test_temporary_failures_are_retried_then_dead_lettered(client, services, staff, twilio, telegram_api):
    await filed_by_sms(client, services, PHONE, "SMt1")
    await filed_by_sms(client, services, PHONE_ZH, "SMt2")
    await resolve_all(client, services, staff)
    twilio.fail_next(2, "500")  # the first two sends fail: one to each phone, both retried
    twilio.fail_for("+8613800000003", "21211")  # never reachable: dropped, not retried
    await post_report(
        client,
        {
            "category": "fallen_tree",
            "description": "Tree across the road",
            "contact": {"phone": "+8613800000003"},
            "consent": True,
            **INSIDE,
        },
    )
    await notify_all(services)
    assert sorted(m.to for m in twilio.messages) == [PHONE, PHONE_ZH]
    assert await services.redis.llen(keys.DISPATCH_DEAD) == 0

    # A provider down for longer than every attempt: a dead letter the console shows.
    code = await telegram_report(client, services, telegram_api)
    telegram_api.fail_chat(CHAT, "500")
    await resolve_all(client, services, staff)
    failures_before = len([c for c in telegram_api.calls if c.method == "sendMessage" and c.status == 500])
    await notify_all(services)
    attempts = len([c for c in telegram_api.calls if c.method == "sendMessage" and c.status == 500])
    assert attempts - failures_before == services.settings.dispatch_max_attempts
    [raw] = await services.redis.lrange(keys.DISPATCH_DEAD, 0, -1)
    letter = json.loads(raw)
    assert letter["kind"] == "report-notification" and letter["ch"] == "telegram" and letter["to"] == str(CHAT)
    assert letter["msg"] == f"report:{code}" and letter["attempt"] == services.settings.dispatch_max_attempts
    dead = await client.get("/api/v1/dispatch/dead-letters", headers=staff["admin"])
    assert [e["msg"] for e in (await dead.json())["entries"]] == [f"report:{code}"]
    # Once the provider is back, the dead letter can go round again.
    telegram_api.fail_chat(CHAT, None)
    replayed = await client.post("/api/v1/dispatch/dead-letters/replay", headers=staff["admin"])
    assert (await replayed.json()) == {"replayed": 1}
    assert await services.redis.llen(keys.DISPATCH_DEAD) == 0
    await notify_all(services)
    assert [c.text for c in telegram_api.sent(CHAT)][-1] == letter["fields"]["text"]


class CrashesBeforeAck(Notifier):
    """A consumer whose process dies right after sending, before acknowledging the entry."""

    async def _ack(self, entry_id: str) -> None:
        raise RuntimeError("killed")


async def test_a_consumer_dying_after_sending_causes_no_duplicate(client, services, staff, twilio):
    await filed_by_sms(client, services, PHONE, "SMd1")
    await notify_all(services)  # "received": answered in the conversation, nothing to send
    await resolve_all(client, services, staff)
    with pytest.raises(RuntimeError):
        await CrashesBeforeAck(services, "doomed").run_once()
    assert [m.to for m in twilio.messages] == [PHONE]
    pending = await services.redis.xpending(keys.REPORT_NOTIFICATIONS, keys.REPORT_NOTIFY_GROUP)
    assert pending["pending"] >= 1, "the dead consumer's entries wait for someone to take them over"
    await asyncio.sleep(services.settings.dispatch_reclaim_after + 0.05)
    await notify_all(services, Notifier(services, "survivor"))
    assert [m.to for m in twilio.messages] == [PHONE], "taken over, acknowledged, not sent again"
    assert await services.redis.scard(keys.REPORT_NOTIFY_SENT) == 0
