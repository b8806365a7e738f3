"""SMS keywords: what a resident's text asks for, and the reply in their language.

JOIN <area> / 订阅 <area> asks for confirmation; YES / 是 confirms (double opt-in); STOP and its
synonyms (and 退订 / TD) opt out for good; START re-subscribes; LANG, LEVEL and HELP / 帮助 adjust
and explain; REPORT <text> / 上报 <text> files a hazard report (answered with its tracking code).
Anything else gets the help text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from channels.context import ChannelContext
from citizen_report.chat import parse_sms_report
from citizen_report.intake import submit_report
from citizen_report.notify import render_notification
from foundation.errors import Conflict, TooManyRequests, ValidationFailed
from foundation.i18n import N_, Catalogs
from publisher.subscribers import STOPPED, Subscribers, find_area
from publisher.taxonomy import GRADE_NAMES

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "退订", "TD"}
START_WORDS = {"START", "UNSTOP"}
YES_WORDS = {"YES", "Y", "是", "确认"}
JOIN_WORDS = {"JOIN", "SUBSCRIBE", "订阅"}
HELP_WORDS = {"HELP", "INFO", "帮助", "?", "？"}
LANG_WORDS = {"LANG", "LANGUAGE", "语言"}
LEVEL_WORDS = {"LEVEL", "级别"}
REPORT_WORDS = {"REPORT", "上报"}
LANGS = {"EN": "en", "ENGLISH": "en", "ZH": "zh_Hans", "CN": "zh_Hans", "中文": "zh_Hans"}
LEVELS = {
    "BLUE": "blue",
    "YELLOW": "yellow",
    "ORANGE": "orange",
    "RED": "red",
    "蓝色": "blue",
    "黄色": "yellow",
    "橙色": "orange",
    "红色": "red",
}
_CJK = re.compile(r"[\u4e00-\u9fff]")

REPORT_NOT_FILED = N_("Your report was not filed: %(problems)s Send REPORT followed by what you see and where.")
REPORT_UNAVAILABLE = N_("Reports by SMS are not available right now. Please use the website.")

HELP = N_(
    "Lanjiang warnings: JOIN <area> to subscribe, LEVEL BLUE|YELLOW|ORANGE|RED for the lowest "
    "grade you want, LANG EN|ZH, STOP to unsubscribe, START to resume."
)


@dataclass(frozen=True)
class Reply:
    text: str
    action: str  # what happened, for the audit and the tests


def split_command(body: str) -> tuple[str, str]:
    text = body.strip()
    match = re.match(r"^(\S+?)(?:[\s:：]+(.*))?$", text, re.S)
    if not match:
        return "", ""
    word, rest = match.group(1), (match.group(2) or "").strip()
    # Chinese keywords are often glued to their argument: 订阅滨江区.
    for keyword in ("订阅", "上报", "语言", "级别"):
        if word.startswith(keyword) and len(word) > len(keyword):
            return keyword, (word[len(keyword) :] + " " + rest).strip()
    return word.upper(), rest


async def handle_keyword(ctx: ChannelContext, phone: str, body: str, *, message_sid: str = "") -> Reply:
    """The inbound `message_sid` makes REPORT idempotent: Twilio retries a webhook with the same one."""
    subs: Subscribers = ctx.subscribers
    existing = await subs.get("sms", phone)
    word, arg = split_command(body)
    lang = existing.lang if existing else ("zh_Hans" if _CJK.search(body) else "en")
    if word in {"订阅", "是", "退订", "帮助", "上报"}:
        lang = existing.lang if existing and existing.status != "pending" else "zh_Hans"
    say = _sayer(ctx.catalogs, lang)

    if word in REPORT_WORDS:
        return await _report(ctx, phone, body, message_sid, lang)
    if word in STOP_WORDS:
        await subs.stop("sms", phone)
        return Reply(say(N_("You will receive no more warnings. Reply START to subscribe again.")), "stop")
    if word in START_WORDS:
        if await subs.start("sms", phone) is None:
            return Reply(say(N_("You have no area yet. Reply JOIN <area> to subscribe.")), "start_without_area")
        return Reply(say(N_("Welcome back: warnings for your areas will reach you again.")), "start")
    if word in JOIN_WORDS:
        area = find_area(ctx.registry, arg)
        if area is None:
            return Reply(
                say(
                    N_("Unknown area \u201c%(area)s\u201d. Send the area's name or code, e.g. JOIN %(example)s."),
                    area=arg[:30],
                    example=_example(ctx),
                ),
                "unknown_area",
            )
        await subs.request("sms", phone, area.code, lang)
        return Reply(
            say(
                N_("Reply YES to receive warnings for %(area)s. Reply STOP at any time to end."),
                area=area.name_in("zh-CN" if lang == "zh_Hans" else "en"),
            ),
            "join",
        )
    if word in YES_WORDS:
        if existing and existing.status == STOPPED and not existing.pending_area:
            return Reply(say(N_("You unsubscribed earlier. Reply START to subscribe again.")), "yes_stopped")
        confirmed = await subs.confirm("sms", phone)
        if confirmed is None:
            return Reply(say(N_("Nothing to confirm. Reply JOIN <area> to subscribe.")), "yes_nothing")
        return Reply(
            say(
                N_("Subscribed. You will receive warnings of grade %(grade)s and above."),
                grade=say(GRADE_NAMES[confirmed.min_grade]),
            ),
            "confirm",
        )
    if word in LANG_WORDS:
        chosen = LANGS.get(arg.upper())
        if chosen is None or existing is None:
            return Reply(say(N_("Reply LANG EN or LANG ZH after subscribing.")), "lang_invalid")
        await subs.update("sms", phone, lang=chosen)
        return Reply(
            _sayer(ctx.catalogs, chosen)(
                N_("Messages will now come in English.") if chosen == "en" else N_("Messages will now come in Chinese.")
            ),
            "lang",
        )
    if word in LEVEL_WORDS:
        grade = LEVELS.get(arg.upper()) or LEVELS.get(arg)
        if grade is None or existing is None:
            return Reply(say(N_("Reply LEVEL BLUE, YELLOW, ORANGE or RED after subscribing.")), "level_invalid")
        await subs.update("sms", phone, min_grade=grade)
        return Reply(
            say(N_("You will receive warnings of grade %(grade)s and above."), grade=say(GRADE_NAMES[grade])), "level"
        )
    return Reply(say(HELP), "help")


async def _report(ctx: ChannelContext, phone: str, body: str, message_sid: str, lang: str) -> Reply:
    """File the report; Twilio retries a webhook with the same MessageSid, which files nothing new."""
    say = _sayer(ctx.catalogs, lang)
    report = parse_sms_report(body, ctx.registry, phone=phone, locale=lang)
    if report is None:
        return Reply(say(REPORT_UNAVAILABLE), "report_unavailable")
    try:
        submitted = await submit_report(ctx.reports, report, idempotency_key=message_sid or None)
    except ValidationFailed as exc:
        problems = " ".join(say(e.message, **e.params) for e in exc.errors)
        return Reply(say(REPORT_NOT_FILED, problems=problems), "report_invalid")
    except (TooManyRequests, Conflict) as exc:
        return Reply(say(exc.message, **exc.params), "report_refused")
    # The "received" text itself (tracking code and page): the notifier does not send it again.
    note = render_notification(ctx.reports.text_env, ctx.catalogs, submitted.report, ctx.settings.public_url)
    return Reply(note["text"], "report_replayed" if submitted.replayed else "report")


def _sayer(catalogs: Catalogs, locale: str) -> Callable[..., str]:
    def say(message: str, **params: object) -> str:
        return catalogs.text(locale, message, **params)

    return say


def _example(ctx: ChannelContext) -> str:
    district = next((a for a in ctx.registry.areas if a.level == "district"), None)
    return district.code if district else "990101"
