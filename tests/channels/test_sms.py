"""SMS through the real twilio client against the local stand-in: keyword subscriptions (double
opt-in, STOP), signatures, rendering within the segment budget, and error classification."""

from __future__ import annotations

from typing import Any

import pytest

from channels.sms.segments import count_segments
from publisher.dispatch.channel import PermanentError, TemporaryError
from tests.delivery_helpers import sms, sms_settings
from tests.publisher.test_workflow import published
from tests.standins.twilio import TwilioStandIn
from warncast.app_keys import SERVICES

PHONE = "+8613800000001"


@pytest.fixture
def settings(settings: Any, twilio: TwilioStandIn) -> Any:
    return sms_settings(settings, twilio.url)


@pytest.fixture
def sms_client(client: Any, services: Any) -> Any:
    return client


@pytest.fixture
def publish(client: Any, services: Any, staff: Any, clock: Any):  # type: ignore[no-untyped-def]
    async def make(**overrides: Any) -> Any:
        result = await published(client, staff, clock, **overrides)
        return await services.warnings.get(result["id"])

    return make


def svc(client: Any) -> Any:
    return client.app[SERVICES]


async def test_forged_or_unsigned_webhooks_change_nothing(sms_client):
    params = {"From": PHONE, "Body": "JOIN 990101"}
    unsigned = await sms_client.post("/webhooks/twilio/sms", data=params)
    forged = await sms_client.post("/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": "AAAA"})
    from tests.delivery_helpers import signed_post

    wrong_key = await signed_post(sms_client, "/webhooks/twilio/sms", params, token="not-ours")
    tampered = await signed_post(sms_client, "/webhooks/twilio/sms", params)
    assert tampered.status == 200
    assert {unsigned.status, forged.status, wrong_key.status} == {403}
    status = await sms_client.post("/webhooks/twilio/status", data={"MessageSid": "SM1", "MessageStatus": "delivered"})
    assert status.status == 403


async def test_double_opt_in_and_keywords(sms_client):
    subs = svc(sms_client).subscribers
    reply = await sms(sms_client, "13800000001", "JOIN Binjiang")  # normalised to E.164
    assert "YES" in reply and "<Response><Message>" in reply
    sub = await subs.get("sms", PHONE)
    assert sub.status == "pending" and sub.pending_area == "990101" and sub.lang == "en"
    assert "Subscribed" in await sms(sms_client, PHONE, "yes")
    sub = await subs.get("sms", PHONE)
    assert sub.active and sub.areas == ["990101"] and sub.min_grade == "orange"
    assert "yellow" in (await sms(sms_client, PHONE, "LEVEL yellow")).lower()
    assert (await subs.get("sms", PHONE)).min_grade == "yellow"
    assert "Chinese" not in await sms(sms_client, PHONE, "LANG ZH"), "the reply comes in the new language"
    assert (await subs.get("sms", PHONE)).lang == "zh_Hans"
    assert "START" in await sms(sms_client, PHONE, "STOP")
    assert (await subs.get("sms", PHONE)).status == "stopped"
    await sms(sms_client, PHONE, "START")
    assert (await subs.get("sms", PHONE)).active


@pytest.mark.parametrize("word", ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "退订", "TD", "stop"])
async def test_every_opt_out_word(sms_client, word):
    await sms(sms_client, PHONE, "JOIN 990102")
    await sms(sms_client, PHONE, "YES")
    await sms(sms_client, PHONE, word)
    assert (await svc(sms_client).subscribers.get("sms", PHONE)).status == "stopped"


async def test_chinese_keywords_reply_in_chinese(sms_client):
    reply = await sms(sms_client, PHONE, "订阅 滨江区")
    assert "是" in reply
    reply = await sms(sms_client, PHONE, "是")
    assert any("\u4e00" <= c <= "\u9fff" for c in reply)
    assert (await svc(sms_client).subscribers.get("sms", PHONE)).active
    assert "退订" in await sms(sms_client, PHONE, "帮助")


async def test_unknown_area_and_unknown_words_help(sms_client):
    reply = await sms(sms_client, PHONE, "JOIN Atlantis")
    assert "Atlantis" in reply
    assert await svc(sms_client).subscribers.get("sms", PHONE) is None
    assert "JOIN" in await sms(sms_client, PHONE, "hello?")
    reply = await sms(sms_client, PHONE, "JOIN <script>x</script>")
    assert "<script>" not in reply and "&lt;script&gt;" in reply  # TwiML is XML: escaped


async def test_yes_without_join_confirms_nothing(sms_client):
    assert "JOIN" in await sms(sms_client, PHONE, "YES")
    assert await svc(sms_client).subscribers.get("sms", PHONE) is None


async def test_rendering_in_both_languages_within_budget(sms_client, publish, clock):
    message = await publish(
        grade="red",
        **{
            "info": {
                "zh-CN": {
                    "headline": "滨江区暴雨红色预警",
                    "description": "长" * 2000,
                    "instruction": "立即停止户外活动，" * 40,
                },
                "en": {
                    "headline": "Red rainstorm warning",
                    "description": "long " * 400,
                    "instruction": "Stay indoors. " * 60,
                },
            }
        },
    )
    channel = svc(sms_client).channels["sms"]
    zh = await channel.render(message, "zh_Hans")
    en = await channel.render(message, "en")
    assert zh.encoding == "UCS-2" and en.encoding == "GSM-7"
    for rendition in (zh, en):
        assert count_segments(rendition.text).segments == rendition.units <= 3
        assert rendition.text.endswith(f"/w/{message.id}"), "the verify link survives shortening"
    assert zh.text.startswith("【") and "红色" in zh.text and "暴雨" in zh.text
    assert "Red" in en.text and "Rainstorm" in en.text and "..." in en.text


async def test_drill_prefix_in_sms(sms_client, publish):
    message = await publish(grade="yellow", status="Exercise")
    channel = svc(sms_client).channels["sms"]
    assert "[DRILL]" in (await channel.render(message, "en")).text
    assert "[演练]" in (await channel.render(message, "zh_Hans")).text


@pytest.mark.parametrize(
    ("kind", "error", "unsubscribe"),
    [
        ("429", TemporaryError, None),
        ("500", TemporaryError, None),
        ("hang", TemporaryError, None),
        ("21610", PermanentError, True),
        ("21211", PermanentError, False),
    ],
)
async def test_error_classification(sms_client, twilio, publish, kind, error, unsubscribe):
    message = await publish(grade="red")
    channel = svc(sms_client).channels["sms"]
    rendition = await channel.render(message, "en")
    twilio.fail_next(1, kind)
    with pytest.raises(error) as caught:
        await channel.send(PHONE, rendition, reference=message.id)
    if unsubscribe is not None:
        assert caught.value.unsubscribe is unsubscribe
    if kind == "429":
        assert caught.value.retry_after == 1.0
    sent = await channel.send(PHONE, rendition, reference=message.id)
    assert sent.provider_id.startswith("SM") and sent.status == "queued"
    last = twilio.messages[-1]
    assert last.to == PHONE and last.fields["From"] == "+15557654321"
    assert last.fields["StatusCallback"] == f"http://warncast.test/webhooks/twilio/status?ref={message.id}"
    assert 60 <= int(last.fields["ValidityPeriod"]) <= 36000
