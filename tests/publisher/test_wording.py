"""One wording of a message per language (publisher.wording), shared by every channel, and the one
mapping of message types to the kinds channels render (publisher.model.message_kind)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from foundation.areas.registry import AreaRegistry, area_from_record
from foundation.i18n import Catalogs
from foundation.settings import Settings
from publisher.model import Circle, Content, InfoText, Message, message_kind
from publisher.wording import word
from warncast.demo_city import demo_areas

TZ = ZoneInfo("Asia/Shanghai")
REGISTRY = AreaRegistry([area_from_record(r) for r in demo_areas()])
CATALOGS = Catalogs.load()
SETTINGS = Settings(public_url="https://warncast.test")


def message(msg_type: str = "Alert", **content: object) -> Message:
    fields: dict[str, object] = {
        "grade": "red",
        "event": "rainstorm",
        "category": "Met",
        "areas": ["990101", "990101001", "990100"],
        "expires": datetime(2030, 7, 1, 18, 0, tzinfo=TZ),
        "info": {
            "zh-CN": InfoText("滨江区暴雨红色预警", "预计有大暴雨。", "停止户外活动。"),
            "en": InfoText("Red rainstorm warning", "Heavy rain expected.", "Stop outdoor activities."),
        },
    }
    fields.update(content)
    return Message(
        id="99010041600002030070110000001",
        thread="t",
        msg_type=msg_type,
        state="published",
        content=Content(**fields),  # type: ignore[arg-type]
        drafter="d",
        created="",
        updated="",
    )


def words(msg: Message, language: str, **kw: object):  # type: ignore[no-untyped-def]
    return word(msg, language, registry=REGISTRY, catalogs=CATALOGS, settings=SETTINGS, **kw)  # type: ignore[arg-type]


def test_message_kinds() -> None:
    assert [message_kind(t) for t in ("Alert", "Update", "Cancel")] == ["alert", "update", "cancel"]
    with pytest.raises(KeyError):
        message_kind("Ack")


def test_a_warning_in_both_languages() -> None:
    zh, en = words(message(), "zh_Hans"), words(message(), "en")
    assert zh.areas == "滨江区、江湾街道、澜江市"
    assert en.areas == "Binjiang District, Jiangwan Subdistrict, Lanjiang City"
    assert (zh.grade, zh.grade_name, zh.grade_warning) == ("red", "红色", "红色预警（I级）")
    assert (en.grade, en.grade_name, en.grade_warning) == ("red", "Red", "Red warning (level I)")
    assert (zh.tag, zh.locale, en.tag, en.locale) == ("zh-CN", "zh_Hans", "en", "en")
    assert zh.headline == "滨江区暴雨红色预警" and en.instruction == "Stop outdoor activities."
    assert en.kind == "alert" and en.msg_type == "" and not en.is_drill and en.drill_prefix == en.drill == ""
    assert en.title == "[Red warning (level I)] Red rainstorm warning"
    assert en.link == zh.link == "https://warncast.test/w/99010041600002030070110000001"
    assert en.expires == datetime(2030, 7, 1, 18, 0, tzinfo=TZ) and en.until == "Until Jul 1, 2030, 18:00 (UTC+8)"
    assert zh.until == "有效期至2030年7月1日 18:00 (UTC+8)"  # 24 h, the zone named
    assert words(message(), "zh-CN") == zh, "a tag and a locale id are the same language"


def test_a_drill_update_and_what_a_channel_is_told() -> None:
    drill = message("Update", status="Exercise")
    en, zh = words(drill, "en"), words(drill, "zh_Hans")
    assert (en.drill_prefix, zh.drill_prefix) == ("[DRILL]", "[演练]")
    assert en.is_drill and en.drill.startswith("DRILL")
    assert en.kind == "update" and en.msg_type == "Update" and zh.msg_type == "更新"
    assert en.title == "[DRILL] [Red warning (level I)] Update: Red rainstorm warning"
    assert en.marked_headline == "[DRILL] Red rainstorm warning" and zh.marked_headline == "[演练] 滨江区暴雨红色预警"
    assert words(drill, "en", kind="expired").kind == "expired"
    assert words(message("Cancel"), "en").kind == "cancel"


def test_unknown_codes_and_drawn_areas_are_still_named() -> None:
    drawn = message(areas=["990101", "999999"], circles=[Circle(31.2, 121.4, 2.0)])
    assert words(drawn, "zh_Hans").areas == "滨江区、999999、手绘区域"
    assert words(drawn, "en").areas == "Binjiang District, 999999, Drawn area"
