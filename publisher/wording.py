"""A published message in one language, as every pulled channel words it (feeds, screens, LED).

One place decides how a grade, a drill, the areas and the expiry read, so a feed reader, a kiosk and
an LED board say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

from foundation.areas.registry import AreaRegistry
from foundation.i18n import N_, Catalogs, format_dt, locale_for_tag
from publisher.cap_xml import DRILL_PREFIX
from publisher.model import Message
from publisher.taxonomy import EVENTS, GRADE_LEVEL, GRADE_NAMES

GRADE_WARNING = N_("%(grade)s warning (level %(level)s)")
DRILL_BANNER = {
    "Exercise": N_("DRILL: this is an exercise, not a real warning."),
    "Test": N_("TEST: this is a technical test, not a real warning."),
}
MSG_TYPE_WORD = {"Alert": "", "Update": N_("Update"), "Cancel": N_("Lifted")}


@dataclass(frozen=True)
class Wording:
    tag: str  # BCP 47 language of the texts
    headline: str
    description: str
    instruction: str
    event: str
    grade: str  # "Red warning (level I)"
    areas: str  # "Binjiang District, Lanjiang City"
    drill: str  # the banner, "" for a real warning
    drill_prefix: str  # "[DRILL] " or ""
    msg_type: str  # "", "Update", "Lifted"
    expires: str  # the expiry, formatted for the language
    until: str  # "Until 18:00, 1 July"

    @property
    def title(self) -> str:
        kind = f"{self.msg_type}: " if self.msg_type and self.msg_type not in self.headline else ""  # cancels say it
        return f"{self.drill_prefix}[{self.grade}] {kind}{self.headline}"


def word(message: Message, tag: str, *, registry: AreaRegistry, catalogs: Catalogs, tz: object) -> Wording:
    content = message.content
    locale = locale_for_tag(tag) or "en"
    texts = content.info.get(tag) or next(iter(content.info.values()))

    def t(msgid: str, **params: object) -> str:
        return catalogs.text(locale, msgid, **params)

    names = [a.name_in(tag) if (a := registry.get(code)) else code for code in content.areas]
    if content.polygons or content.circles:
        names.append(t(N_("Drawn area")))
    grade_name = t(GRADE_NAMES[content.grade])
    expires = format_dt(content.expires, "zh_Hans_CN" if locale == "zh_Hans" else locale, tz, "medium")
    msg_type = MSG_TYPE_WORD[message.msg_type]
    return Wording(
        tag=tag,
        headline=texts.headline,
        description=texts.description,
        instruction=texts.instruction,
        event=t(EVENTS[content.event].name),
        grade=t(GRADE_WARNING, grade=grade_name, level=GRADE_LEVEL[content.grade]),
        areas=t(N_(", ")).join(names),
        drill=t(DRILL_BANNER[content.status]) if content.is_drill else "",
        drill_prefix=f"{t(DRILL_PREFIX[content.status])} " if content.is_drill else "",
        msg_type=t(msg_type) if msg_type else "",
        expires=expires,
        until=t(N_("Until %(time)s"), time=expires),
    )
