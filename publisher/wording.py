"""A published message in one language: the words every channel says it with.

One place decides how a grade, a drill, the areas and the expiry read, so a text message, a
Telegram message, a feed reader, a kiosk and an LED board say the same thing. Residents get their
own language, never the operator's; pushed channels fill their templates (templates/messages/)
with a `Wording` (`render_template`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jinja2

from foundation.areas.registry import AreaRegistry
from foundation.i18n import N_, Catalogs, format_dt, join_list, normalize_locale, tag_for
from foundation.settings import Settings
from publisher.cap_xml import DRILL_PREFIX
from publisher.model import Message, message_kind
from publisher.taxonomy import EVENTS, GRADE_LEVEL, GRADE_NAMES

GRADE_WARNING = N_("%(grade)s warning (level %(level)s)")
DRILL_BANNER = {
    "Exercise": N_("DRILL: this is an exercise, not a real warning."),
    "Test": N_("TEST: this is a technical test, not a real warning."),
}
MSG_TYPE_WORD = {"Alert": "", "Update": N_("Update"), "Cancel": N_("Lifted")}


@dataclass(frozen=True)
class Wording:
    locale: str  # Babel locale id of the reader ("zh_Hans", "en")
    tag: str  # BCP 47 language of the texts
    kind: str  # what it tells: alert, update, cancel, or expired (the end of validity)
    grade: str  # the grade code ("red"), for colours and icons
    grade_name: str  # "Red"
    grade_warning: str  # "Red warning (level I)"
    event: str
    headline: str
    description: str
    instruction: str
    areas: str  # "Binjiang District, Lanjiang City"
    is_drill: bool
    drill: str  # the banner, "" for a real warning
    drill_prefix: str  # "[DRILL]" or ""
    msg_type: str  # "", "Update", "Lifted"
    expires: datetime
    until: str  # "Until 18:00, 1 July"
    link: str  # the short link that verifies the message
    issuer: str = ""  # the issuing unit's name; "" for a deployment without units (the one centre)

    @property
    def marked_headline(self) -> str:
        """The headline, after the drill prefix when it is a drill."""
        return f"{self.drill_prefix} {self.headline}" if self.drill_prefix else self.headline

    @property
    def title(self) -> str:
        kind = f"{self.msg_type}: " if self.msg_type and self.msg_type not in self.headline else ""  # cancels say it
        drill = f"{self.drill_prefix} " if self.drill_prefix else ""
        return f"{drill}[{self.grade_warning}] {kind}{self.headline}"


def short_link(settings: Settings, message_id: str) -> str:
    return f"{settings.public_url}/w/{message_id}"


def word(
    message: Message,
    language: str,
    *,
    registry: AreaRegistry,
    catalogs: Catalogs,
    settings: Settings,
    kind: str | None = None,
) -> Wording:
    """`language`: a locale id ("zh_Hans") or a BCP 47 tag ("zh-CN"); `kind` when the channel is
    told something else than the message type says (the planner's "expired")."""
    content = message.content
    locale = normalize_locale(language) or "en"
    tag = tag_for(locale)
    texts = content.info.get(tag) or next(iter(content.info.values()))

    def t(msgid: str, **params: object) -> str:
        return catalogs.text(locale, msgid, **params)

    names = [a.name_in(tag) if (a := registry.get(code)) else code for code in content.areas]
    if content.polygons or content.circles:
        names.append(t(N_("Drawn area")))
    grade_name = t(GRADE_NAMES[content.grade])
    expires = format_dt(content.expires, locale, settings.tz, "medium")
    msg_type = MSG_TYPE_WORD[message.msg_type]
    return Wording(
        locale=locale,
        tag=tag,
        kind=kind or message_kind(message.msg_type),
        grade=content.grade,
        grade_name=grade_name,
        grade_warning=t(GRADE_WARNING, grade=grade_name, level=GRADE_LEVEL[content.grade]),
        event=t(EVENTS[content.event].name),
        headline=texts.headline,
        description=texts.description,
        instruction=texts.instruction,
        areas=join_list(names, locale),
        is_drill=content.is_drill,
        drill=t(DRILL_BANNER[content.status]) if content.is_drill else "",
        drill_prefix=t(DRILL_PREFIX[content.status]) if content.is_drill else "",
        msg_type=t(msg_type) if msg_type else "",
        expires=content.expires,
        until=t(N_("Until %(time)s"), time=expires),
        link=short_link(settings, message.id),
        issuer=message.issuer_name(tag, "") if message.issuer.get("named") else "",
    )


def template_context(view: Wording, catalogs: Catalogs, settings: Settings, **extra: Any) -> dict[str, Any]:
    """What a message template (templates/messages/) is rendered with."""
    locale = view.locale
    return {"view": view, "translations": catalogs.get(locale), "locale": locale, "tz": settings.tz, **extra}


async def render_template(
    env: jinja2.Environment, name: str, view: Wording, catalogs: Catalogs, settings: Settings, **extra: Any
) -> str:
    text = await env.get_template(name).render_async(template_context(view, catalogs, settings, **extra))
    return "\n".join(line.rstrip() for line in text.strip().splitlines())
