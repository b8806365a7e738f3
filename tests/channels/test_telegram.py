"""Telegram: the real python-telegram-bot client against the local Bot API stand-in, through the real
app. The subscription bot (webhook → handlers → replies), rendering and sending a published warning,
error classification and outbox mode."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from telegram.error import InvalidToken

from channels.outbox import read_outbox
from channels.telegram import bot as tgbot
from channels.telegram.channel import TelegramChannel
from foundation.settings import Settings
from publisher.dispatch.channel import AuthError, PermanentError, Rendition, TemporaryError
from publisher.taxonomy import GRADES
from tests.publisher.test_workflow import published
from tests.standins.telegram import BOT_USER, TelegramStandin
from warncast.app_keys import SERVICES
from warncast.web.app import create_app

TOKEN = "123:ABC"
SECRET = "s3cret"
CITY, DISTRICT, STREET, COMMUNITY = "990100", "990101", "990101001", "990101001002"
FAR_COMMUNITY = "990104005004"  # 云水村 / Yunshui Village
_ids = itertools.count(1000)


@pytest.fixture
async def telegram_api() -> AsyncIterator[TelegramStandin]:
    async with TelegramStandin(TOKEN, hang_seconds=5) as api:
        yield api


@pytest.fixture
def settings(settings: Settings, telegram_api: TelegramStandin) -> Settings:
    """The conftest settings with Telegram configured against the stand-in. Dispatch workers stay
    off so that only what these tests do reaches the stand-in."""
    return settings.with_(
        telegram_bot_token=TOKEN,
        telegram_api_base=telegram_api.url,
        telegram_webhook_secret=SECRET,
        public_url="https://warncast.test",
        run_workers=False,
    )


@pytest.fixture
def channel(services: Any) -> TelegramChannel:
    return services.channels["telegram"]  # type: ignore[no-any-return]


# -- Telegram updates, as Telegram would post them -------------------------------------------------


def _user(chat_id: int, lang: str) -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": "Ana <b>", "language_code": lang}


def _chat(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": "Ana <b>"}


def message_update(
    chat_id: int, text: str | None = None, *, lang: str = "en", location: tuple[float, float] | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_ids),
        "date": int(time.time()),
        "chat": _chat(chat_id),
        "from": _user(chat_id, lang),
    }
    if text is not None:
        message["text"] = text
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    if location is not None:
        message["location"] = {"latitude": location[0], "longitude": location[1]}
    return {"update_id": next(_ids), "message": message}


def callback_update(chat_id: int, data: str, *, lang: str = "en") -> dict[str, Any]:
    shown = {"message_id": 77, "date": int(time.time()), "chat": _chat(chat_id), "from": BOT_USER, "text": "…"}
    query = {"id": str(next(_ids)), "from": _user(chat_id, lang), "chat_instance": "ci", "data": data, "message": shown}
    return {"update_id": next(_ids), "callback_query": query}


async def post_update(client: Any, update: dict[str, Any], *, secret: str | None = SECRET, status: int = 200) -> None:
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    resp = await client.post("/webhooks/telegram", json=update, headers=headers)
    assert resp.status == status, await resp.text()


async def say(client: Any, api: TelegramStandin, chat_id: int, text: str, **kw: Any) -> Any:
    """Send a message as the resident; return the bot's one reply."""
    before = len(api.sent(chat_id))
    await post_update(client, message_update(chat_id, text, **kw))
    replies = api.sent(chat_id)[before:]
    assert len(replies) == 1, [c.text for c in replies]
    return replies[0]


async def press(client: Any, api: TelegramStandin, chat_id: int, data: str, **kw: Any) -> tuple[Any, Any]:
    """Press an inline button; return (the callback answer, the edit of the message or None)."""
    before = len(api.calls)
    await post_update(client, callback_update(chat_id, data, **kw))
    new = api.calls[before:]
    answers = [c for c in new if c.method == "answerCallbackQuery"]
    edits = [c for c in new if c.method == "editMessageText"]
    assert len(answers) == 1 and len(edits) <= 1, [(c.method, c.params) for c in new]
    return answers[0], (edits[0] if edits else None)


def text(services: Any, locale: str, msgid: str, **params: Any) -> str:
    return services.catalogs.text(locale, msgid, **params)  # type: ignore[no-any-return]


# -- the webhook -----------------------------------------------------------------------------------


async def test_startup_checks_token_and_registers_webhook(client, services, telegram_api):
    assert [c.method for c in telegram_api.calls[:1]] == ["getMe"]
    hooks = telegram_api.sent(method="setWebhook")
    assert len(hooks) == 1
    assert hooks[0].params["url"] == "https://warncast.test/webhooks/telegram"
    assert hooks[0].params["secret_token"] == SECRET
    assert hooks[0].params["allowed_updates"] == ["message", "callback_query"]


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x"])
async def test_webhook_without_the_secret_is_refused_and_changes_nothing(client, services, telegram_api, secret):
    telegram_api.reset()
    await post_update(client, callback_update(501, f"sub:{COMMUNITY}"), secret=secret, status=403)
    await post_update(client, message_update(501, "/stop"), secret=secret, status=403)
    assert await services.subscribers.get("telegram", "501") is None
    assert telegram_api.calls == []


async def test_webhook_rejects_what_is_not_an_update(client, services, telegram_api):
    telegram_api.reset()
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    for body in (b"{not json", b"[1, 2]", b'{"update_id": "1"}', b'{"update_id": 1, "message": {"chat": 5}}'):
        resp = await client.post("/webhooks/telegram", data=body, headers=headers)
        assert resp.status == 400, body
        assert (await resp.json())["error"]["code"] == "bad_request"
    assert telegram_api.calls == []


# -- commands --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "locale"), [("en", "en"), ("zh-hans", "zh_Hans"), ("zh", "zh_Hans"), ("fr", "en")])
async def test_start_and_help_reply_in_the_users_language(client, services, telegram_api, lang, locale):
    reply = await say(client, telegram_api, 601, "/start", lang=lang)
    assert reply.text == text(services, locale, tgbot.WELCOME)
    assert reply.parse_mode is None, "replies are plain text: nothing the user typed is parsed as markup"
    reply = await say(client, telegram_api, 601, "/help", lang=lang)
    assert reply.text == text(services, locale, tgbot.HELP)
    assert "/subscribe" in reply.text and "/stop" in reply.text
    assert await services.subscribers.get("telegram", "601") is None, "reading help subscribes nobody"


async def test_subscribe_by_navigating_the_area_picker(client, services, telegram_api):
    reply = await say(client, telegram_api, 602, "/subscribe", lang="en")
    buttons = dict((data, label) for label, data in reply.buttons())
    assert buttons[f"sub:{CITY}"] == "All of Lanjiang City"
    assert buttons[f"nav:{DISTRICT}"] == "Binjiang District"
    assert len([d for d in buttons if d.startswith("nav:")]) == 4  # the four districts

    answer, edit = await press(client, telegram_api, 602, f"nav:{DISTRICT}")
    labels = dict((data, label) for label, data in edit.buttons())
    assert labels[f"sub:{DISTRICT}"] == "All of Binjiang District"
    assert labels[f"nav:{STREET}"] == "Jiangwan Subdistrict"
    assert labels[f"nav:{CITY}"] == text(services, "en", tgbot.BACK)
    assert edit.params["message_id"] == 77 and str(edit.chat_id) == "602"

    _, edit = await press(client, telegram_api, 602, f"nav:{STREET}")
    communities = [data for _, data in edit.buttons() if data.startswith("sub:") and data != f"sub:{STREET}"]
    assert f"sub:{COMMUNITY}" in communities and len(communities) == 3
    assert await services.subscribers.get("telegram", "602") is None, "navigating subscribes nobody"

    answer, edit = await press(client, telegram_api, 602, f"sub:{COMMUNITY}")
    name = services.registry.get(COMMUNITY).name_in("en")
    assert edit.text == text(services, "en", tgbot.SUBSCRIBED, area=name) and name in edit.text
    assert edit.reply_markup is None, "the picker is gone once the choice is made"
    sub = await services.subscribers.get("telegram", "602")
    assert sub.active and sub.areas == [COMMUNITY] and sub.lang == "en" and sub.source == "telegram"
    assert await services.subscribers.count_active([COMMUNITY], "telegram", GRADES) == 1


async def test_picker_speaks_chinese_to_a_chinese_user(client, services, telegram_api):
    reply = await say(client, telegram_api, 603, "/subscribe", lang="zh-hans")
    labels = [label for label, _ in reply.buttons()]
    assert "滨江区" in labels and "Binjiang District" not in labels
    assert reply.text == text(services, "zh_Hans", tgbot.PICK_IN, area="澜江市")
    _, edit = await press(client, telegram_api, 603, f"sub:{FAR_COMMUNITY}", lang="zh-hans")
    assert "云水村" in edit.text
    assert (await services.subscribers.get("telegram", "603")).lang == "zh_Hans"


async def test_shared_location_subscribes_to_its_community(client, services, telegram_api):
    area = services.registry.get(FAR_COMMUNITY)
    reply = await say(client, telegram_api, 604, None, location=area.point)
    assert reply.text == text(services, "en", tgbot.SUBSCRIBED, area="Yunshui Village")
    sub = await services.subscribers.get("telegram", "604")
    assert sub.active and sub.areas == [FAR_COMMUNITY]

    live = message_update(605, location=area.point)
    live["edited_message"] = live.pop("message")  # a live location moving: not a new request
    await post_update(client, live)
    assert await services.subscribers.get("telegram", "605") is None and telegram_api.sent(605) == []

    reply = await say(client, telegram_api, 605, None, location=(0.0, 0.0))
    assert reply.text == text(services, "en", tgbot.OUTSIDE)
    assert await services.subscribers.get("telegram", "605") is None


async def test_subscribe_by_name_and_plain_text(client, services, telegram_api):
    reply = await say(client, telegram_api, 606, "/subscribe Yunshui Village")
    assert "Yunshui Village" in reply.text
    assert (await services.subscribers.get("telegram", "606")).areas == [FAR_COMMUNITY]

    hostile = "<b>nowhere</b> & <script>"
    reply = await say(client, telegram_api, 607, f"/subscribe {hostile}")
    assert reply.text == text(services, "en", tgbot.NO_SUCH_AREA, query=hostile)
    assert reply.parse_mode is None
    assert await services.subscribers.get("telegram", "607") is None

    reply = await say(client, telegram_api, 607, "云水村")  # a name alone: offered, not yet subscribed
    assert reply.buttons() == [(text(services, "en", tgbot.SUBSCRIBE_BUTTON), f"sub:{FAR_COMMUNITY}")]
    assert await services.subscribers.get("telegram", "607") is None
    reply = await say(client, telegram_api, 607, "hello there")
    assert reply.text == text(services, "en", tgbot.NOT_UNDERSTOOD) and reply.buttons() == []


async def test_lang_choice_overrides_the_telegram_language(client, services, telegram_api):
    reply = await say(client, telegram_api, 608, "/lang", lang="en")
    assert reply.buttons() == [("English", "lang:en"), ("中文", "lang:zh_Hans")]
    answer, edit = await press(client, telegram_api, 608, "lang:zh_Hans", lang="en")
    assert edit.text == text(services, "zh_Hans", tgbot.LANG_SET, language="中文")
    assert (await services.subscribers.get("telegram", "608")).lang == "zh_Hans"

    reply = await say(client, telegram_api, 608, "/subscribe", lang="en")  # Telegram still says English
    assert "滨江区" in [label for label, _ in reply.buttons()]
    _, edit = await press(client, telegram_api, 608, f"sub:{COMMUNITY}", lang="en")
    sub = await services.subscribers.get("telegram", "608")
    assert sub.lang == "zh_Hans" and sub.active, "subscribing keeps the chosen language"

    await press(client, telegram_api, 608, "lang:en", lang="zh-hans")
    reply = await say(client, telegram_api, 608, "/start", lang="zh-hans")
    community = services.registry.get(COMMUNITY)
    assert community.name_in("en") in reply.text and community.name_in("zh-CN") not in reply.text


async def test_level_sets_the_minimum_grade(client, services, telegram_api):
    await press(client, telegram_api, 609, f"sub:{COMMUNITY}", lang="zh-hans")
    reply = await say(client, telegram_api, 609, "/level", lang="zh-hans")
    assert [data for _, data in reply.buttons()] == [f"level:{g}" for g in GRADES]
    assert "红色" in reply.buttons()[-1][0]
    answer, edit = await press(client, telegram_api, 609, "level:red", lang="zh-hans")
    assert edit.text == text(services, "zh_Hans", tgbot.LEVEL_SET, grade="红色")
    sub = await services.subscribers.get("telegram", "609")
    assert sub.min_grade == "red" and sub.active
    assert await services.subscribers.count_active([COMMUNITY], "telegram", ["red"]) == 1
    assert await services.subscribers.count_active([COMMUNITY], "telegram", ["yellow", "orange"]) == 0

    await press(client, telegram_api, 610, "level:blue", lang="en")  # before subscribing: a preference
    sub = await services.subscribers.get("telegram", "610")
    assert sub.min_grade == "blue" and sub.lang == "en" and not sub.active


async def test_stop_is_honoured(client, services, telegram_api):
    await press(client, telegram_api, 611, f"sub:{COMMUNITY}")
    await press(client, telegram_api, 611, f"sub:{FAR_COMMUNITY}")
    assert (await services.subscribers.get("telegram", "611")).areas == [COMMUNITY, FAR_COMMUNITY]
    reply = await say(client, telegram_api, 611, "/stop")
    assert reply.text == text(services, "en", tgbot.STOPPED)
    sub = await services.subscribers.get("telegram", "611")
    assert sub.status == "stopped" and not sub.active
    assert await services.subscribers.count_active([COMMUNITY, FAR_COMMUNITY], "telegram", GRADES) == 0
    reply = await say(client, telegram_api, 611, "/start")
    assert text(services, "en", tgbot.STATUS_STOPPED) in reply.text

    reply = await say(client, telegram_api, 612, "/stop", lang="zh")  # never subscribed: stays out
    sub = await services.subscribers.get("telegram", "612")
    assert sub.status == "stopped" and sub.lang == "zh_Hans"


@pytest.mark.parametrize(
    "data",
    ["sub:999999", "nav:990101/../x", "sub:", "lang:fr", "level:purple", "admin:1", "", "sub:990101001002:extra"],
)
async def test_forged_callback_data_changes_nothing(client, services, telegram_api, data):
    answer, edit = await press(client, telegram_api, 613, data)
    assert edit is None
    assert answer.params["text"] == text(services, "en", tgbot.INVALID_CHOICE)
    assert answer.params["show_alert"] is True
    assert await services.subscribers.get("telegram", "613") is None


async def test_a_chat_that_blocked_the_bot_is_stopped(client, services, telegram_api):
    await press(client, telegram_api, 614, f"sub:{COMMUNITY}")
    telegram_api.fail_chat(614, "403")
    await post_update(client, message_update(614, "/help"))  # the reply fails; the webhook still says 200
    assert (await services.subscribers.get("telegram", "614")).status == "stopped"


# -- warnings out ----------------------------------------------------------------------------------

HOSTILE = '<script>alert("x")</script> & <a href="https://evil.test">win</a>'


async def published_message(client: Any, services: Any, staff: Any, clock: Any) -> Any:
    info = {
        "zh-CN": {
            "headline": "滨江区暴雨红色预警 " + HOSTILE,
            "description": "预计降雨100毫米。",
            "instruction": "远离低洼地带。",
        },
        "en": {
            "headline": "Red rainstorm warning " + HOSTILE,
            "description": "100 mm of rain.",
            "instruction": "Stay away from low ground.",
        },
    }
    result = await published(client, staff, clock, info=info)
    return await services.warnings.get(result["id"])


SIMPLE = Rendition(text="<b>Test</b>", parse_mode="HTML")


def tags(html: str) -> set[str]:
    return set(re.findall(r"</?([a-zA-Z]+)", html))


async def test_published_warning_is_rendered_and_sent_as_escaped_html(
    client, services, staff, clock, telegram_api, channel
):
    message = await published_message(client, services, staff, clock)
    en = await channel.render(message, "en")
    zh = await channel.render(message, "zh_Hans")
    assert en.parse_mode == "HTML" and en.units == 1
    assert "Red rainstorm warning" in en.text and "Binjiang District" in en.text
    assert "滨江区" in zh.text and "红色" in zh.text
    for rendition in (en, zh):
        assert "&lt;script&gt;" in rendition.text and "&amp;" in rendition.text
        assert tags(rendition.text) <= {"b"}, "only our own markup reaches Telegram"
        assert f"https://warncast.test/w/{message.id}" in rendition.text

    telegram_api.reset()
    result = await channel.send("555", en, reference=f"{message.id}:555")
    [call] = telegram_api.sent(555)
    assert call.parse_mode == "HTML" and call.text == en.text and call.chat_id == 555
    assert result.provider_id and result.status == "delivered"


async def test_an_update_is_sent_as_a_reply_to_the_first_message(client, services, telegram_api, channel):
    first = await channel.send("557", SIMPLE, reference="r1")
    await channel.send("557", SIMPLE, reference="r2", reply_to=first.provider_id)
    await channel.send("557", SIMPLE, reference="r3", reply_to="outbox-1-0")  # not a Telegram id: on its own
    calls = telegram_api.sent(557)
    assert [c.params.get("reply_parameters") for c in calls[:1]] == [None]
    reply = calls[1].params["reply_parameters"]
    reply = json.loads(reply) if isinstance(reply, str) else reply
    assert reply == {"message_id": int(first.provider_id), "allow_sending_without_reply": True}
    assert calls[2].params.get("reply_parameters") is None


@pytest.mark.parametrize(
    ("kind", "error", "code"),
    [
        ("429", TemporaryError, "429"),
        ("403", PermanentError, "403"),
        ("400", PermanentError, "400"),
        ("500", TemporaryError, ""),
    ],
)
async def test_send_failures_are_classified(client, services, telegram_api, channel, kind, error, code):
    rendition = SIMPLE
    telegram_api.fail_chat(556, kind)
    with pytest.raises(error) as caught:
        await channel.send("556", rendition, reference="r")
    assert caught.value.code == code
    if kind == "429":
        assert caught.value.retry_after == 2
    if kind in ("403", "400"):
        assert caught.value.unsubscribe is True  # blocked, or the chat is gone
    telegram_api.fail_chat(556, None)
    await channel.send("556", rendition, reference="r")  # the failure was the stand-in's, not ours
    assert len(telegram_api.sent(556)) == 1


async def test_a_hanging_provider_times_out_as_temporary(client, services, telegram_api, channel):
    slow = TelegramChannel(channel.ctx)
    slow.bot = slow.make_bot(timeout=0.3)
    await slow.bot.initialize()
    try:
        telegram_api.fail_next("hang")
        with pytest.raises(TemporaryError):
            await slow.send("557", SIMPLE, reference="r")
    finally:
        await slow.bot.shutdown()
    assert telegram_api.sent(557) == []


async def test_a_wrong_token_fails_start_and_sends_as_auth_error(client, services, telegram_api, channel):
    ctx = channel.ctx
    wrong = TelegramChannel(replace(ctx, settings=ctx.settings.with_(telegram_bot_token="9:NO")))
    try:
        with pytest.raises(InvalidToken):
            await wrong.start()  # getMe is refused: the process does not come up half-configured
        assert wrong.bot_app is None
        with pytest.raises(AuthError):
            await wrong.send("558", SIMPLE, reference="r")
    finally:
        await wrong.close()
    assert telegram_api.sent(558) == []


async def test_outbox_mode_without_a_token(aiohttp_client, client, services, staff, clock, settings, telegram_api):
    message = await published_message(client, services, staff, clock)
    offline = await aiohttp_client(create_app(settings.with_(telegram_bot_token=""), clock=clock))
    channel = offline.app[SERVICES].channels["telegram"]
    assert channel.outbox_mode and channel.bot_app is None
    telegram_api.reset()

    rendition = await channel.render(message, "en")
    result = await channel.send("777", rendition, reference=f"{message.id}:777")
    [entry] = await read_outbox(services.redis, "telegram")
    assert entry["to"] == "777" and entry["text"] == rendition.text and entry["reference"] == f"{message.id}:777"
    assert result.provider_id == f"outbox-{entry['id']}"
    assert telegram_api.calls == [], "outbox mode never talks to Telegram"

    resp = await offline.post(
        "/webhooks/telegram", json=message_update(777, "/start"), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert resp.status == 404
